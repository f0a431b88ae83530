"""``sftdata augment`` against the loopback server: every op in both languages, every elimination rule,
lineage, rounds, resume after a budget stop, determinism, the CLI.

The server's reply function plays the model: it reads which prompt it got (the markers of our prompt
files), pulls out the instruction being rewritten, and answers like a well-behaved model unless the
test swaps in a misbehaving reply for one kind of request.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import run_cli
from openai_server import Reply

from sftdata.augment import AugmentConfig, augment
from sftdata.core.errors import BudgetExhausted
from sftdata.llm.client import LLMConfig

EN_SEEDS = [
    {"instruction": "Write a haiku about rain.", "input": "", "output": "Rain on the roof.", "lang": "en"},
    {"instruction": "Explain how a bicycle gear works.", "input": "", "output": "Gears trade force for speed."},
    {"instruction": "Summarize the following text.", "input": "The council met on Monday and approved the new park budget.",
     "output": "The council approved the park budget."},
]
ZH_SEEDS = [
    {"instruction": "写一首关于雨的短诗。", "input": "", "output": "雨落屋檐，点点成诗。", "lang": "zh"},
    {"instruction": "解释自行车变速器的原理。", "input": "", "output": "变速器通过改变齿轮比来调节踏频和速度。"},
    {"instruction": "总结这段文字。", "input": "市议会周一开会，批准了新公园的预算。", "output": "议会批准了公园预算。"},
]
SEEDS = {"en": EN_SEEDS, "zh": ZH_SEEDS}

# ------------------------------------------------------------------ the fake model

KIND_MARKERS = [  # (kind, marker in the prompt), most specific first
    ("complicate-input", ("#Rewritten Input#", "#改写后的输入#")),
    ("breadth", ("#Created Instruction#", "#新创作的指令#")),
    ("paraphrase", ("#Reworded Instruction#", "#换了说法的指令#")),
    ("constraints", ("exactly ONE new requirement", "增加且只增加一项新的要求")),
    ("deepen", ("takes more knowledge", "更多的知识")),
    ("concretize", ("by making it more specific", "让一条指令更具体")),
    ("reasoning", ("several steps of reasoning", "多步推理")),
    ("equal", ("Answer with exactly one word", "只用两个字回答")),
]
REWRITES = {
    "en": {
        "constraints": "{g} and keep the answer under fifty words.",
        "deepen": "{g} and explain the reasons behind each point.",
        "concretize": "{g}, set in the harbour town of Porto.",
        "reasoning": "{g}; list the facts, then reason stepwise.",
        "complicate-input": "Field notes on {g}: readings 12, 47 and 95, one value missing.",
        "breadth": "Design a rare three-question quiz about {g}.",
        "paraphrase": "Kindly handle this request for me: {g}.",
    },
    "zh": {
        "constraints": "{g}，并把回答控制在五十字以内。",
        "deepen": "{g}，并深入说明每一点背后的原因。",
        "concretize": "{g}，以深秋时节的杭州西湖为背景。",
        "reasoning": "{g}；先列出相关事实，再一步一步推理出结论。",
        "complicate-input": "关于“{g}”的记录：读数为12、47和95，其中缺了一个值。",
        "breadth": "请出一道关于“{g}”的冷门小测验题。",
        "paraphrase": "我想麻烦你帮我完成下面这件事：{g}。",
    },
}


def classify(prompt: str) -> str:
    for kind, markers in KIND_MARKERS:
        if any(m in prompt for m in markers):
            return kind
    return "answer"


def given(prompt: str) -> str:
    """The instruction a rewriting prompt shows, without its final punctuation."""
    m = re.search(r"#(?:Given Instruction|Instruction|给定指令|指令)#[:：]\n(.*?)\n(?:\n|#)", prompt, re.S)
    assert m, prompt
    return m.group(1).strip().rstrip(".。")


def lang_of(prompt: str) -> str:
    return "zh" if re.search(r"[\u4e00-\u9fff]{4}", prompt.split("#")[0] or prompt) else "en"


Behaviour = Callable[[str, str, dict], "str | Reply | None"]


class FakeModel:
    """Well-behaved replies; ``overrides[kind](prompt, lang, body)`` may return another reply (None: default)."""

    def __init__(self, **overrides: Behaviour) -> None:
        self.overrides = overrides
        self.kinds: list[str] = []

    def __call__(self, body: dict, n: int) -> str | Reply:
        prompt = body["messages"][-1]["content"]
        kind = classify(prompt)
        self.kinds.append(kind)
        lang = lang_of(prompt)
        if kind in self.overrides:
            out = self.overrides[kind](prompt, lang, body)
            if out is not None:
                return out
        if kind == "equal":  # a paraphrase says the same; every evolution adds something
            same = "Kindly handle this request" in prompt or "我想麻烦你" in prompt
            return ("相同" if same else "不同") if lang == "zh" else ("Same" if same else "Different")
        if kind == "answer":
            if re.search(r"[\u4e00-\u9fff]", prompt):
                return f"这是一个认真而完整的回答，内容具体详细（版本{body.get('seed', 0) % 1000}）。"
            return f"Here is a complete answer, written with care and detail (variant {body.get('seed', 0) % 1000})."
        return REWRITES[lang][kind].format(g=given(prompt))


def write_seeds(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def llm_config(url: str, **kw) -> LLMConfig:
    base = dict(base_urls=[url], model="test-model", concurrency=4, retry_base=0.01, timeout=10.0)
    base.update(kw)
    return LLMConfig(**base)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run(tmp_path: Path, srv, seeds: list[dict], name: str = "out", llm_kw: dict | None = None, **cfg) -> dict:
    source = write_seeds(tmp_path / f"{name}-in.jsonl", seeds)
    config = AugmentConfig(**cfg)
    return augment(config, llm_config(srv.url, **(llm_kw or {})), [source], tmp_path / name, progress=False)


def by_reason(out: Path) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for row in rows(out / "rejected.jsonl"):
        assert row["stage"] == "augment"
        found.setdefault(row["reason"], []).append(row)
    return found


# ------------------------------------------------------------------ every op, both languages

LLM_REQUESTS = {"constraints": 3, "deepen": 3, "concretize": 3, "reasoning": 3, "complicate-input": 3,
                "breadth": 3, "paraphrase": 2}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("op", ["constraints", "deepen", "concretize", "reasoning", "complicate-input", "breadth",
                                "paraphrase"])
def test_llm_op_in_both_languages(make_server, tmp_path: Path, op: str, lang: str) -> None:
    model = FakeModel()
    srv = make_server(reply=model)
    seeds = SEEDS[lang]
    summary = run(tmp_path, srv, seeds, ops=[op])
    out = tmp_path / "out"
    accepted = rows(out / "accepted.jsonl")
    assert rows(out / "rejected.jsonl") == []
    assert len(accepted) == 3, summary
    assert srv.count == 3 * LLM_REQUESTS[op]
    parents = {s["instruction"]: s for s in seeds}
    for rec, seed in zip(accepted, seeds):
        assert rec["source"] == ("paraphrase" if op == "paraphrase" else f"evol:{op}")
        assert rec["lang"] == lang and rec["meta"]["op"] == op and rec["meta"]["round"] == 1
        assert rec["meta"]["model"] == "test-model"
        assert rec["parent_id"] == _id(seed)
        if op == "complicate-input":
            assert rec["instruction"] == seed["instruction"] and rec["input"] != seed["input"]
            assert "12" in rec["input"]
        elif op == "breadth":
            assert rec["input"] == ""
        else:
            assert rec["input"] == seed["input"]  # in-depth ops and paraphrase keep the parent's input
        if op == "paraphrase":
            assert rec["output"] == seed["output"] and rec["meta"]["equal_check"] == "same"
        else:
            assert rec["output"].startswith("这是" if lang == "zh" else "Here is")
            assert rec["meta"]["equal_check"] == "different"
        assert rec["instruction"] not in parents or op == "complicate-input"
    stats = json.loads((out / "stats.json").read_text())
    assert stats["ops"][op] == {"proposed": 3, "kept": 3, "failed": 0, "skipped": 0, "eliminated": {}}
    assert stats["finished"] is True and stats["accepted"] == 3


def _id(seed: dict) -> str:
    from sftdata.core.records import record_id

    return record_id(seed["instruction"], seed.get("input", ""), seed["output"])


def test_paraphrase_keeps_parent_output_and_answers_when_there_is_none(make_server, tmp_path: Path) -> None:
    model = FakeModel(equal=lambda p, lang, b: "Same")
    srv = make_server(reply=model)
    seeds = [dict(EN_SEEDS[0]), {"instruction": "Explain how a bicycle gear works.", "output": ""}]
    run(tmp_path, srv, seeds, ops=["paraphrase"])
    accepted = rows(tmp_path / "out" / "accepted.jsonl")
    assert [r["output"] for r in accepted][0] == "Rain on the roof."
    assert accepted[1]["output"].startswith("Here is a complete answer")
    assert accepted[0]["meta"]["equal_check"] == "same"
    assert model.kinds.count("answer") == 1


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_rule_template_needs_no_llm(make_server, tmp_path: Path, lang: str) -> None:
    srv = make_server(reply=FakeModel())
    seeds = SEEDS[lang]
    # recasting an instruction keeps most of its words: at the default threshold many are near-duplicates
    summary = run(tmp_path, srv, seeds, name="strict", ops=["rule:template"])
    assert srv.count == 0
    counts = summary["ops"]["rule:template"]
    assert counts["eliminated"].get("rouge", 0) >= 1 and counts["kept"] + counts["eliminated"]["rouge"] == 3
    for row in by_reason(tmp_path / "strict")["rouge"]:
        assert row["detail"]["score"] > 0.7 and row["detail"]["most_similar"]
        assert row["record"]["output"]  # the parent's output travels with it
    summary = run(tmp_path, srv, seeds, name="loose", ops=["rule:template"], rouge_threshold=0.95)
    accepted = rows(tmp_path / "loose" / "accepted.jsonl")
    assert len(accepted) >= 2 and srv.count == 0
    for rec in accepted:
        seed = next(s for s in seeds if _id(s) == rec["parent_id"])
        assert rec["source"] == "rule:template" and rec["output"] == seed["output"] and rec["input"] == seed["input"]
        assert rec["instruction"] != seed["instruction"] and rec["meta"]["template"]
        assert "model" not in rec["meta"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_rule_keywords_is_answered(make_server, tmp_path: Path, lang: str) -> None:
    model = FakeModel()
    srv = make_server(reply=model)
    keywords = ["maritime trade history"] if lang == "en" else ["海上贸易史"]
    kw_file = tmp_path / "kw.txt"
    kw_file.write_text("# domain\n" + "\n".join(keywords) + "\n", encoding="utf-8")
    # a keyword adds only a few words to a short instruction: judged at a looser threshold here
    run(tmp_path, srv, SEEDS[lang], ops=["rule:keywords"], keywords_file=str(kw_file), rouge_threshold=0.85)
    accepted = rows(tmp_path / "out" / "accepted.jsonl")
    assert len(accepted) == 3 and model.kinds == ["answer"] * 3
    for rec in accepted:
        assert keywords[0] in rec["instruction"] and rec["source"] == "rule:keywords"
        assert rec["meta"]["keyword"] == keywords[0] and rec["output"].startswith("这是" if lang == "zh" else "Here")


# ------------------------------------------------------------------ elimination rules

def only_for(fragment: str, reply: str | Reply) -> Behaviour:
    """A misbehaving reply for prompts containing ``fragment``; the default otherwise."""
    return lambda prompt, lang, body: reply if fragment in prompt else None


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_equal_check_eliminates_evolutions_without_gain(make_server, tmp_path: Path, lang: str) -> None:
    srv = make_server(reply=FakeModel(equal=only_for(SEEDS[lang][0]["instruction"][:6], "相同" if lang == "zh" else
                                                     "Same")))
    summary = run(tmp_path, srv, SEEDS[lang], ops=["deepen"])
    found = by_reason(tmp_path / "out")
    assert list(found) == ["equal"] and len(found["equal"]) == 1
    row = found["equal"][0]
    assert row["record"]["parent_id"] == _id(SEEDS[lang][0]) and row["detail"]["verdict"] == "same"
    assert row["record"]["output"]  # its answer is kept for the audit
    assert summary["ops"]["deepen"]["eliminated"] == {"equal": 1} and summary["ops"]["deepen"]["kept"] == 2


@pytest.mark.parametrize("lang, reply, reason", [
    ("en", "I'm sorry, but I can't help with that request.", "apology"),
    ("zh", "抱歉，我无法完成这个请求。", "apology"),
    ("en", "It is what it is.", "stopwords_only"),
    ("zh", "我们的。", "stopwords_only"),
    ("en", "   ", "empty_output"),
])
def test_answer_rules(make_server, tmp_path: Path, lang: str, reply: str, reason: str) -> None:
    fragment = SEEDS[lang][1]["instruction"][:6]
    srv = make_server(reply=FakeModel(answer=only_for(fragment, reply)))
    summary = run(tmp_path, srv, SEEDS[lang], ops=["constraints"])
    found = by_reason(tmp_path / "out")
    assert list(found) == [reason] and found[reason][0]["record"]["output"] == reply.strip()
    assert summary["ops"]["constraints"]["eliminated"] == {reason: 1}
    assert summary["ops"]["constraints"]["kept"] == 2


def test_answers_pass_the_filters_instance_rules(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=FakeModel(answer=only_for("bicycle", "Here are the steps you asked for:")))
    run(tmp_path, srv, EN_SEEDS[:2], ops=["reasoning"])
    found = by_reason(tmp_path / "out")
    assert list(found) == ["ends_with_colon"] and len(found["ends_with_colon"]) == 1


def test_no_rule_switches_filter_rules_off(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=FakeModel(constraints=lambda p, lg, b: f"{given(p)} now."))
    summary = run(tmp_path, srv, EN_SEEDS[:2], ops=["constraints"], no_rule=["rouge"])
    assert summary["ops"]["constraints"]["kept"] == 2  # near-duplicates of their parents, allowed


@pytest.mark.parametrize("lang, rewrite, phrase", [
    ("en", "Rewrite the given prompt so that it rhymes: {g}.", "given prompt"),
    ("en", "{g}. #Rewritten Instruction#: {g} in winter.", "#Rewritten Instruction#"),
    ("zh", "根据给定指令：{g}，写得更长一些。", "给定指令"),
    ("zh", "{g}。#改写后的指令#：{g}，写在冬天。", "#改写后的指令#"),
])
def test_copying_the_prompts_phrases_eliminates(make_server, tmp_path: Path, lang: str, rewrite: str,
                                                phrase: str) -> None:
    srv = make_server(reply=FakeModel(constraints=lambda p, lg, b: rewrite.format(g=given(p))))
    summary = run(tmp_path, srv, SEEDS[lang][:2], ops=["constraints"])
    found = by_reason(tmp_path / "out")
    assert list(found) == ["copied_prompt"] and len(found["copied_prompt"]) == 2
    assert found["copied_prompt"][0]["detail"]["phrase"].lower() == phrase.lower()
    assert found["copied_prompt"][0]["record"]["output"] == ""  # never answered
    assert srv.count == 2  # no equality check, no answer
    assert summary["ops"]["constraints"]["eliminated"] == {"copied_prompt": 2}


def test_near_duplicates_are_rejected_by_rouge_before_being_answered(make_server, tmp_path: Path) -> None:
    # the first parent's evolution is its parent plus one word; the other two evolve into the same text
    def rewrite(prompt: str, lang: str, body: dict) -> str:
        g = given(prompt)
        return f"{g} now." if "haiku" in g else "Describe the history of public parks in European capitals."
    model = FakeModel(constraints=rewrite)
    srv = make_server(reply=model)
    summary = run(tmp_path, srv, EN_SEEDS, ops=["constraints"])
    found = by_reason(tmp_path / "out")
    assert [r["record"]["parent_id"] for r in found["rouge"]] == [_id(EN_SEEDS[0]), _id(EN_SEEDS[2])]
    near_parent, near_sibling = found["rouge"]
    assert near_parent["detail"]["most_similar"] == "Write a haiku about rain."
    assert near_sibling["detail"] == {"score": 1.0, "most_similar":
                                      "Describe the history of public parks in European capitals."}
    assert near_parent["record"]["output"] == ""
    assert summary["ops"]["constraints"] == {"proposed": 3, "kept": 1, "failed": 0, "skipped": 0,
                                             "eliminated": {"rouge": 2}}
    # the near-duplicate of its parent was caught before answering: 3 rewrites + 2 x (equal, answer)
    assert srv.count == 7


@pytest.mark.parametrize("rewrite, reason", [
    (lambda g: f"{g}.", "unchanged"),
    (lambda g: "Rédigez un long poème sur les feuilles d'automne et le bruit du vent.", "language"),
    (lambda g: "写一首关于秋天落叶的长诗，并描写风声。", "language"),
    (lambda g: "Écrivez un long poème sur les feuilles d'automne et le bruit du vent.", "format"),  # non-ASCII start
    (lambda g: "Go.", "length"),
    (lambda g: "Describe the image in the attached file.", "blacklist"),
    (lambda g: "#Rewritten Instruction#:", "unparsable"),
])
def test_rewrite_rules(make_server, tmp_path: Path, rewrite, reason: str) -> None:
    srv = make_server(reply=FakeModel(constraints=lambda p, lg, b: rewrite(given(p))))
    summary = run(tmp_path, srv, EN_SEEDS[:2], ops=["constraints"])
    found = by_reason(tmp_path / "out")
    assert list(found) == [reason] and len(found[reason]) == 2, found
    assert summary["ops"]["constraints"]["kept"] == 0 and srv.count == 2


def test_truncated_rewrite_and_failed_requests(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=FakeModel(constraints=only_for("haiku", Reply("Write a haiku about rain and",
                                                                            finish_reason="length"))))
    summary = run(tmp_path, srv, EN_SEEDS[:2], ops=["constraints"])
    found = by_reason(tmp_path / "out")
    assert list(found) == ["truncated"] and found["truncated"][0]["detail"]["what"] == "rewrite"
    assert summary["ops"]["constraints"]["kept"] == 1
    # a request that fails every attempt: counted, logged in failures.jsonl, nothing accepted or rejected for it
    srv2 = make_server(reply=FakeModel(answer=lambda p, lg, b: Reply(status=500) if "bicycle" in p else None))
    summary = run(tmp_path, srv2, EN_SEEDS[:2], name="fail", ops=["constraints"], llm_kw={"max_attempts": 2})
    assert summary["ops"]["constraints"] == {"proposed": 2, "kept": 1, "failed": 1, "skipped": 0, "eliminated": {}}
    failures = rows(tmp_path / "fail" / "failures.jsonl")
    assert len(failures) == 1 and failures[0]["tag"] == "augment:answer"
    assert rows(tmp_path / "fail" / "rejected.jsonl") == []


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_paraphrase_that_changes_meaning_is_rejected(make_server, tmp_path: Path, lang: str) -> None:
    srv = make_server(reply=FakeModel(equal=lambda p, lg, b: "不同" if lang == "zh" else "Different"))
    summary = run(tmp_path, srv, SEEDS[lang][:2], ops=["paraphrase"])
    assert summary["ops"]["paraphrase"]["eliminated"] == {"meaning_changed": 2}


def test_unclear_equality_verdict_keeps_the_evolution(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=FakeModel(equal=lambda p, lg, b: "Hmm, hard to say."))
    run(tmp_path, srv, EN_SEEDS[:1], ops=["reasoning"])
    [rec] = rows(tmp_path / "out" / "accepted.jsonl")
    assert rec["meta"]["equal_check"] == "unclear"


# ------------------------------------------------------------------ lineage, rounds, stats

def test_rounds_evolve_survivors_with_lineage(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=FakeModel(equal=only_for("fifty words and keep", "Same")))
    summary = run(tmp_path, srv, EN_SEEDS, ops=["constraints", "paraphrase", "rule:template"], rounds=3,
                  rouge_threshold=0.9)
    out = tmp_path / "out"
    accepted = rows(out / "accepted.jsonl")
    by_id = {r["id"]: r for r in accepted}
    seed_ids = {_id(s) for s in EN_SEEDS}
    rounds = {r["meta"]["round"] for r in accepted}
    assert rounds == {1, 2, 3}
    for rec in accepted:
        if rec["meta"]["round"] == 1:
            assert rec["parent_id"] in seed_ids
        else:  # a survivor of the round before
            parent = by_id[rec["parent_id"]]
            assert parent["meta"]["round"] == rec["meta"]["round"] - 1
    assert summary["kept_by_round"] == {str(k): sum(r["meta"]["round"] == k for r in accepted) for k in (1, 2, 3)}
    stats = json.loads((out / "stats.json").read_text())
    total = stats["ops"]["constraints"]
    assert total["proposed"] == total["kept"] + total["failed"] + total["skipped"] + sum(total["eliminated"].values())
    assert stats["accepted"] == len(accepted) and stats["rejected"] == len(rows(out / "rejected.jsonl"))


def test_ops_per_record_and_limit(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=FakeModel())
    summary = run(tmp_path, srv, EN_SEEDS, ops=["evol"], ops_per_record=1, limit=2, seed=3)
    assert summary["parents"] == 2
    assert sum(c["proposed"] for c in summary["ops"].values()) == 2
    again = run(tmp_path, srv, EN_SEEDS, name="again", ops=["evol"], ops_per_record=1, limit=2, seed=3)
    assert again["ops"] == summary["ops"]  # the draw is reproducible


# ------------------------------------------------------------------ resume and determinism

def _files(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in ("accepted.jsonl", "rejected.jsonl")}


def test_budget_stop_then_resume_matches_an_uninterrupted_run(make_server, tmp_path: Path) -> None:
    seeds = EN_SEEDS + ZH_SEEDS
    cfg = dict(ops=["constraints", "paraphrase", "rule:template"], rounds=2, rouge_threshold=0.9)
    reference = make_server(reply=FakeModel(equal=only_for("fifty words", "Same")))
    run(tmp_path, reference, seeds, name="ref", **cfg)

    srv = make_server(reply=FakeModel(equal=only_for("fifty words", "Same")))
    with pytest.raises(BudgetExhausted):
        run(tmp_path, srv, seeds, name="cut", llm_kw={"max_requests": 7}, **cfg)
    assert srv.count == 7
    stats = json.loads((tmp_path / "cut" / "stats.json").read_text())
    assert stats["finished"] is False
    summary = run(tmp_path, srv, seeds, name="cut", **cfg)  # the budget is a resumable setting
    assert summary["llm"]["cached"] > 0
    sent = [json.dumps([b["messages"], b.get("seed")], sort_keys=True) for b in srv.bodies]
    assert len(sent) == len(set(sent)), "a paid request was sent again"
    assert srv.count == reference.count
    assert _files(tmp_path / "cut") == _files(tmp_path / "ref")


def test_crash_mid_round_is_redone_from_the_cache(make_server, tmp_path: Path) -> None:
    cfg = dict(ops=["constraints", "paraphrase", "rule:template"], rounds=2, rouge_threshold=0.9)
    srv = make_server(reply=FakeModel())
    run(tmp_path, srv, EN_SEEDS, **cfg)
    out = tmp_path / "out"
    done = _files(out)
    sent = srv.count
    # as if the process died during the last round: its checkpoint never written, a line half-written
    lines = (out / "checkpoints.jsonl").read_text().splitlines(keepends=True)
    assert len(lines) >= 2
    (out / "checkpoints.jsonl").write_text("".join(lines[:-1]))
    with open(out / "accepted.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"instruction": "half a rec')
    run(tmp_path, srv, EN_SEEDS, **cfg)
    assert _files(out) == done and srv.count == sent


def test_duplicate_and_mixed_shape_inputs(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=FakeModel())
    sharegpt = {"conversations": [{"from": "human", "value": "Describe a quiet harbour at dawn."},
                                  {"from": "gpt", "value": "Boats rest on still water."}]}
    summary = run(tmp_path, srv, [EN_SEEDS[0], EN_SEEDS[0], sharegpt], ops=["deepen"])
    assert summary["inputs"] == 3 and summary["parents"] == 2
    assert srv.count == 2 * 3


def test_rerun_of_a_finished_run_sends_nothing(make_server, tmp_path: Path) -> None:
    srv = make_server(reply=FakeModel())
    first = run(tmp_path, srv, EN_SEEDS, ops=["deepen"])
    count = srv.count
    second = run(tmp_path, srv, EN_SEEDS, ops=["deepen"])
    assert srv.count == count and second["accepted"] == first["accepted"]


def test_changed_settings_refuse_to_resume(make_server, tmp_path: Path) -> None:
    from sftdata.core.errors import ConfigError

    srv = make_server(reply=FakeModel())
    run(tmp_path, srv, EN_SEEDS, ops=["deepen"])
    with pytest.raises(ConfigError, match="--out"):
        run(tmp_path, srv, EN_SEEDS, ops=["deepen"], seed=5)


def test_output_does_not_depend_on_timing(make_server, tmp_path: Path) -> None:
    jitter = random.Random(0)

    def slow(prompt: str, lang: str, body: dict) -> Reply:
        return Reply(text=f"Here is a complete answer, variant {body.get('seed', 0) % 1000}.",
                     delay=jitter.random() * 0.03)

    outs = []
    for name, conc in (("a", 1), ("b", 8)):
        srv = make_server(reply=FakeModel(answer=slow))
        run(tmp_path, srv, EN_SEEDS + ZH_SEEDS, name=name, ops=["constraints", "deepen", "breadth"],
            llm_kw={"concurrency": conc})
        outs.append(_files(tmp_path / name))
    assert outs[0] == outs[1]
    srv = make_server(reply=FakeModel())
    run(tmp_path, srv, EN_SEEDS, name="seeded", ops=["constraints"], seed=1)
    seeds_sent = {b["seed"] for b in srv.bodies}
    srv2 = make_server(reply=FakeModel())
    run(tmp_path, srv2, EN_SEEDS, name="seeded2", ops=["constraints"], seed=2)
    assert seeds_sent.isdisjoint({b["seed"] for b in srv2.bodies})


# ------------------------------------------------------------------ the command line



def test_cli_runs_and_prints_json(make_server, tmp_path: Path, capsys) -> None:
    srv = make_server(reply=FakeModel())
    source = write_seeds(tmp_path / "in.jsonl", EN_SEEDS)
    code, out, err = run_cli(["augment", str(source), "--out", str(tmp_path / "o"), "--ops", "deepen,rule:keywords",
                              "--keyword", "the history of maritime trade routes", "--base-url", srv.url,
                              "--model", "m", "--json", "--no-progress"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["ops"]["deepen"]["kept"] == 3 and summary["ops"]["rule:keywords"]["kept"] == 3
    assert summary["accepted"] == 6 and summary["llm"]["sent"] == srv.count == 12
    code, out, err = run_cli(["augment", str(source), "--out", str(tmp_path / "o"), "--ops", "deepen,rule:keywords",
                              "--keyword", "the history of maritime trade routes", "--base-url", srv.url,
                              "--model", "m", "--no-progress"], capsys)
    assert code == 0 and "deepen: proposed 3, kept 3" in out


@pytest.mark.parametrize("args, message", [
    (["--ops", "evolve"], "--ops: unknown operation 'evolve'"),
    (["--ops", "rule:keywords"], "rule:keywords needs --keywords FILE or --keyword WORD"),
    (["--ops", "deepen", "--keyword", "x"], "--keyword: keywords are only used by the rule:keywords"),
    (["--ops", "deepen", "--rounds", "0"], "--rounds: must be at least 1"),
    (["--ops", "deepen", "--rouge-threshold", "1.5"], "--rouge-threshold"),
    (["--ops", "rule:keywords", "--keywords", "missing.txt"], "missing.txt: no such keywords file"),
])
def test_cli_bad_options_exit_2(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    source = write_seeds(tmp_path / "in.jsonl", EN_SEEDS)
    code, out, err = run_cli(["augment", str(source), "--out", str(tmp_path / "o"), *args], capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_cli_bad_input_names_file_and_line(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(EN_SEEDS[0]) + "\n{broken\n", encoding="utf-8")
    code, out, err = run_cli(["augment", str(source), "--out", str(tmp_path / "o"), "--ops", "deepen"], capsys)
    assert code == 2 and f"{source}:2: invalid JSON" in err
    assert not (tmp_path / "o").exists()


def test_cli_budget_stop_exits_0_and_says_so(make_server, tmp_path: Path, capsys) -> None:
    srv = make_server(reply=FakeModel())
    source = write_seeds(tmp_path / "in.jsonl", EN_SEEDS)
    code, out, err = run_cli(["augment", str(source), "--out", str(tmp_path / "o"), "--ops", "deepen",
                              "--base-url", srv.url, "--model", "m", "--max-requests", "2", "--no-progress"], capsys)
    assert code == 0 and "stopped: budget reached (--max-requests 2" in err


@pytest.mark.parametrize("reasoning", ["strip", "keep"])
def test_a_reasoning_models_thinking_is_kept_beside_the_answer_or_dropped(make_server, tmp_path: Path,
                                                                          reasoning: str) -> None:
    def thinking(prompt: str, lang: str, body: dict) -> str:
        return "<think>Outline the steps first.</think>\n\nHere is a complete answer, written with care and detail."

    srv = make_server(reply=FakeModel(answer=thinking))
    run(tmp_path, srv, EN_SEEDS[:2], ops=["reasoning"], llm_kw={"reasoning": reasoning})
    kept = rows(tmp_path / "out" / "accepted.jsonl")
    assert kept and all(row["output"].startswith("Here is a complete answer") for row in kept)
    assert {row["meta"].get("reasoning") for row in kept} == (
        {"Outline the steps first."} if reasoning == "keep" else {None})
