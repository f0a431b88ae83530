"""``sftdata pairs`` against the loopback server (generator and judge), from meta.judge, and from
human feedback; the preference exports loaded with ``datasets``.

The server plays both roles. A generation request gets "GOOD ..." for an even seed and "BAD ..." for
an odd one. The judge (our prompt files' wording) grades by the marker in the response: GOOD 9,
MID 6, BAD 3; pairwise, the higher grade wins whatever its position (equal grades: the first
shown wins, so the two orders disagree: a tie).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import run_cli

from sftdata.core.records import Record, write_jsonl
from sftdata.judge import append_feedback
from sftdata.llm.client import LLMConfig
from sftdata.pairs.config import PairsConfig
from sftdata.pairs.stage import make_pairs


def _after(prompt: str, marker: str, end: str | None = None) -> str:
    tail = prompt.split(marker, 1)[1]
    return tail.split(end, 1)[0] if end and end in tail else tail


def grade(text: str) -> int:
    return 9 if "GOOD" in text else 6 if "MID" in text else 3


def reply(body: dict, n: int) -> str:
    prompt = body["messages"][-1]["content"] if len(body["messages"]) == 1 else body["messages"][0]["content"]
    if "strict grader" in prompt:
        score = grade(_after(prompt, "Response:"))
        return f"Helpfulness: {score}\nCorrectness: {score}\nFit: {score}\nScore: {score}/10\nReason: assessed."
    if "Response A:" in prompt:
        first, second = _after(prompt, "Response A:", "Response B:"), _after(prompt, "Response B:")
        return "[[A]]" if grade(first) >= grade(second) else "[[B]]"  # equal: position bias
    return ("GOOD" if body.get("seed", 0) % 2 == 0 else "BAD") + f" answer #{body.get('seed')}"


@pytest.fixture
def server(make_server):
    return make_server(reply=reply)


def llm(server) -> LLMConfig:
    return LLMConfig(base_urls=[server.url], model="m", retry_base=0.01)


def run_pairs(records, out, server, **settings) -> dict:
    from sftdata.judge import JudgeConfig

    config = PairsConfig(**settings)
    return make_pairs(records, config, out, llm_config=llm(server), judge_config=JudgeConfig(),
                      judge_llm=llm(server))


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_pairs_from_judge_scores_with_ties_and_low_margins_rejected(server, tmp_path):
    records = [Record("Name a colour.", "", "GOOD red"), Record("Name a colour.", "", "BAD seven"),
               Record("Add 2 and 3.", "", "MID about five"), Record("Add 2 and 3.", "", "GOOD 5"),
               Record("Spell cat.", "", "BAD k-a-t"), Record("Spell cat.", "", "BAD c-a-t-t"),
               Record("Say hi.", "", "GOOD hi")]
    summary = run_pairs(records, tmp_path / "p", server, rank_by="judge", min_margin=4)
    pairs, rejected = read(tmp_path / "p" / "pairs.jsonl"), read(tmp_path / "p" / "rejected.jsonl")
    assert [(p["prompt"], p["chosen"], p["rejected"], p["margin"]) for p in pairs] == [
        ("Name a colour.", "GOOD red", "BAD seven", 6.0)]
    assert pairs[0]["provenance"]["ranked_by"] == "judge-score"
    assert pairs[0]["provenance"]["chosen"]["judge"]["score"] == 9
    assert {r["record"]["instruction"]: r["reason"] for r in rejected} == {
        "Add 2 and 3.": "margin_below_min", "Spell cat.": "tie", "Say hi.": "too_few_candidates"}
    assert summary["reasons"] == {"margin_below_min": 1, "tie": 1, "too_few_candidates": 1}

    sent = server.count
    run_pairs(records, tmp_path / "p", server, rank_by="judge", min_margin=4)
    assert server.count == sent  # the rerun's judge requests all come from the cache


def test_sampled_candidates_ranked_pairwise_in_both_orders(server, tmp_path):
    records = [Record("Name a colour.", "", "MID maybe blue"), Record("Say hi.", "", "GOOD hello")]
    summary = run_pairs(records, tmp_path / "p", server, rank_by="pairwise", candidates=2, seed=0)
    assert summary["candidates_added"] == 4  # seeds 0 (GOOD) and 1 (BAD) for each instruction
    pairs = {p["prompt"]: p for p in read(tmp_path / "p" / "pairs.jsonl")}
    colour = pairs["Name a colour."]
    assert colour["chosen"] == "GOOD answer #0" and colour["rejected"] == "BAD answer #1"
    assert colour["provenance"]["chosen"]["source"].startswith("sample:")
    assert colour["provenance"]["ranked_by"] == "judge-pairwise" and colour["margin"] == 1.0
    # "Say hi.": the record's GOOD and the sampled GOOD tie (each wins only when shown first);
    # the BAD sample loses to both: chosen is a GOOD one, margin 0.75 - 0 (one tie of two games)
    hi = pairs["Say hi."]
    assert hi["rejected"] == "BAD answer #1" and hi["margin"] == 0.75
    bodies = [b["messages"][0]["content"] for b in server.bodies if "Response A:" in b["messages"][0]["content"]]
    assert len(bodies) == 2 * (3 + 3)  # 3 games per instruction, each asked in both orders


def test_pairs_from_meta_judge_scores_and_pairwise_verdicts(server, tmp_path):
    records = [
        Record("Q1", "", "first", meta={"judge": {"rubric": "score", "score": 8}}),
        Record("Q1", "", "second", meta={"judge": {"rubric": "score", "score": 2}}),
        Record("Q2", "", "left", meta={"output_b": "right", "judge": {"rubric": "pairwise", "winner": "B",
                                                                       "position_consistent": True}}),
        Record("Q3", "", "up", meta={"output_b": "down", "judge": {"rubric": "pairwise", "winner": "tie",
                                                                    "position_consistent": False}}),
    ]
    run_pairs(records, tmp_path / "p", server, rank_by="meta")
    assert server.count == 0
    pairs = {p["prompt"]: (p["chosen"], p["rejected"], p["margin"]) for p in read(tmp_path / "p" / "pairs.jsonl")}
    assert pairs == {"Q1": ("first", "second", 6.0), "Q2": ("right", "left", 1.0)}
    assert [(r["record"]["instruction"], r["reason"]) for r in read(tmp_path / "p" / "rejected.jsonl")] == [
        ("Q3", "tie")]


def test_pairs_from_human_feedback_choices_scores_and_edits(server, tmp_path, capsys):
    records = [Record("Pick one.", "", "apple", meta={"output_b": "pear"}),
               Record("Tie one.", "", "x", meta={"output_b": "y"}),
               Record("Rate us.", "", "great answer"), Record("Rate us.", "", "poor answer"),
               Record("Fix me.", "", "teh answer")]
    data = tmp_path / "reviewed.jsonl"
    write_jsonl(data, records)
    feedback = tmp_path / "feedback.jsonl"  # beside the input: found without --feedback
    for row in [{"id": records[0].id, "action": "choose", "choice": "A"},
                {"id": records[0].id, "action": "choose", "choice": "B"},  # changed mind: the last wins
                {"id": records[1].id, "action": "choose", "choice": "tie"},
                {"id": records[2].id, "action": "score", "score": 9},
                {"id": records[3].id, "action": "score", "score": 4},
                {"id": records[4].id, "action": "edit", "output": "the answer"}]:
        append_feedback(feedback, {"file": "reviewed.jsonl", "index": 0, **row})
    code, out, err = run_cli(["pairs", str(data), "--out", str(tmp_path / "p"), "--rank-by", "human",
                              "--format", "trl,llamafactory-alpaca", "--json"], capsys)
    assert code == 0, err
    pairs = {p["prompt"]: p for p in read(tmp_path / "p" / "pairs.jsonl")}
    assert (pairs["Pick one."]["chosen"], pairs["Pick one."]["rejected"]) == ("pear", "apple")
    assert pairs["Pick one."]["provenance"]["ranked_by"] == "human-choice"
    assert (pairs["Rate us."]["chosen"], pairs["Rate us."]["margin"]) == ("great answer", 5.0)
    assert (pairs["Fix me."]["chosen"], pairs["Fix me."]["rejected"]) == ("the answer", "teh answer")
    assert [r["reason"] for r in read(tmp_path / "p" / "rejected.jsonl")] == ["tie"]
    assert json.loads(out)["pairs"] == 3


# ten unrelated tasks: the export's leak-free split also groups near-duplicate instructions (ROUGE-L)
TASKS = ["Name a colour.", "Add two and three.", "Spell the word cat.", "Translate hello into French.",
         "List three fruits.", "Write a haiku about rain.", "Explain photosynthesis briefly.",
         "Give a synonym for happy.", "Convert ten miles to kilometres.", "Summarize the plot of Hamlet."]


def test_preference_exports_load_with_datasets_and_match_documented_columns(tmp_path):
    from datasets import load_dataset

    from sftdata.export.preference import export_pairs
    from sftdata.finetune.preference import load_pairs, pair_from_obj

    rows = [{"prompt": [{"role": "system", "content": "Be kind."},
                        {"role": "user", "content": f"{TASKS[i % 10]}\n\nwith input"}],
             "chosen": [{"role": "assistant", "content": f"good {i}"}],
             "rejected": [{"role": "assistant", "content": f"bad {i}"}]} for i in range(40)]
    pairs = [pair_from_obj(r) for r in rows]
    summary = export_pairs(pairs, tmp_path / "e", split=(0.6, 0.2, 0.2), seed=1)
    expected = {"trl": ["prompt", "chosen", "rejected"], "trl-conversational": ["prompt", "chosen", "rejected"],
                "llamafactory-alpaca": ["instruction", "input", "chosen", "rejected", "system"],
                "llamafactory-sharegpt": ["conversations", "chosen", "rejected", "system"]}
    prompts_by_split: dict[str, set] = {}
    for fmt, columns in expected.items():
        files = {split: str(tmp_path / "e" / rel) for split, rel in summary["files"][fmt].items()}
        dataset = load_dataset("json", data_files=files)
        for split, part in dataset.items():
            assert part.column_names == columns, fmt
            if fmt == "trl-conversational":
                prompts_by_split[split] = {row["prompt"][-1]["content"] for row in part}
                assert part[0]["chosen"][0]["role"] == "assistant" and part[0]["prompt"][0]["role"] == "system"
        # each export reads back as the same pairs (sftdata's reader takes every shape)
        back = load_pairs([files["train"]])
        assert {(p.chosen, p.rejected) for p in back} <= {(p.chosen, p.rejected) for p in pairs}
    # leak-free: the four pairs of each of the ten prompts are all in one split
    assert sum(len(v) for v in prompts_by_split.values()) == 10
    assert not set.intersection(*prompts_by_split.values())
    info = json.loads((tmp_path / "e" / "dataset_info.json").read_text())
    alpaca = info["e_llamafactory_alpaca_train"]
    assert alpaca == {"file_name": "llamafactory-alpaca/train.jsonl", "formatting": "alpaca", "ranking": True,
                      "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen",
                                  "rejected": "rejected", "system": "system"}}
    sharegpt = info["e_llamafactory_sharegpt_train"]
    assert sharegpt["ranking"] is True and sharegpt["columns"] == {
        "messages": "conversations", "chosen": "chosen", "rejected": "rejected", "system": "system"}
    assert not any(k.startswith("e_trl") for k in info)
    card = (tmp_path / "e" / "README.md").read_text()
    assert "config_name: trl-conversational" in card and "40 preference pairs" in card
    assert summary["warnings"]  # TRL standard drops the system prompt, and says so
