"""``sftdata judge`` against the loopback server: each rubric end to end in English and Chinese, the
retry of an unreadable reply and the raw record after it, the cache (a rerun sends nothing), both
orders for pairwise (position bias measured), the budget cut and resume, calibration, the CLI.

The server plays the judge: it tells the rubric and language from our prompt files' wording, finds the
response(s) in the prompt, and grades by a marker in the text (GOOD / BAD, 好 / 差), replying in the
rubric's format, in the prompt's language.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import run_cli

from sftdata.core.errors import BudgetExhausted
from sftdata.core.records import Record
from sftdata.judge import JudgeConfig, judge_records
from sftdata.judge.api import judge_files
from sftdata.llm.client import LLMConfig

RECORDS = {
    "en": [Record("Name a primary colour.", "", "GOOD: red is a primary colour.", lang="en"),
           Record("Add the numbers.", "2 and 3", "BAD: the sum is 7.", lang="en"),
           Record("Translate 'cat' to French.", "", "GOOD: chat.", lang="en")],
    "zh": [Record("说出一种三原色。", "", "好：红色是三原色之一。", lang="zh"),
           Record("把两个数相加。", "2 和 3", "差：和是 7。", lang="zh"),
           Record("把“猫”翻译成法语。", "", "好：chat。", lang="zh")],
}


def grade(text: str) -> bool:
    return "GOOD" in text or "好：" in text


def _between(prompt: str, start: str, end: str | None) -> str:
    tail = prompt.split(start, 1)[1]
    return tail.split(end, 1)[0] if end and end in tail else tail


def judge_reply(body: dict, n: int) -> str:
    messages = body["messages"]
    prompt = messages[0]["content"]
    zh = "论文" in prompt or "评分员" in prompt or "比较同一条指令" in prompt
    if "GARBLE-ALWAYS" in prompt:
        return "I am not sure what to say about this one."
    if "GARBLE-ONCE" in prompt and len(messages) == 1:
        return "Hmm, interesting response. Let me think about it more."
    if "Self-Instruct" in prompt:
        good = grade(_between(prompt, "输出：" if zh else "Output:", "请用" if zh else "Answer three"))
        if zh:
            return f"有效任务：是\n输入合适：是\n输出正确：{'是' if good else '否'}\n评级：{'A' if good else 'C'}\n理由：已检查。"
        return (f"Valid task: yes\nAppropriate input: yes\nCorrect output: {'yes' if good else 'no'}\n"
                f"Rating: {'A' if good else 'C'}\nReason: checked.")
    if "严格评分员" in prompt or "strict grader" in prompt:
        good = grade(_between(prompt, "回答：" if zh else "Response:", None))
        score = 9 if good else 3
        if zh:
            return f"<think>先想一想，大概{10 - score}分？</think>有用性：{score}\n正确性：{score}\n契合度：{score}\n评分：{score}分\n理由：已评估。"
        return f"Helpfulness: {score}\nCorrectness: {score}\nFit: {score}\nScore: {score}/10\nReason: assessed."
    first = _between(prompt, "回答 A：" if zh else "Response A:", "回答 B：" if zh else "Response B:")
    if "BIAS" in prompt:
        return "胜者：A" if zh else "Winner: A"
    winner = "A" if grade(first) else "B"
    return f"胜者：{winner}\n理由：更准确。" if zh else f"[[{winner}]]"


@pytest.fixture
def judge_server(make_server):
    return make_server(reply=judge_reply)


def llm(server) -> LLMConfig:
    return LLMConfig(base_urls=[server.url], model="judge-model", retry_base=0.01)


def read_out(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "accepted.jsonl").read_text("utf-8").splitlines()]


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("rubric", ["self-instruct", "score"])
def test_pointwise_rubrics_end_to_end(judge_server, tmp_path, lang, rubric):
    summary = judge_records(RECORDS[lang], JudgeConfig(rubric=rubric), llm(judge_server), tmp_path, progress=False)
    rows = read_out(tmp_path)
    assert [r["instruction"] for r in rows] == [r.instruction for r in RECORDS[lang]]
    judges = [r["meta"]["judge"] for r in rows]
    assert all(j["rubric"] == rubric and j["model"] == "judge-model" and j["lang"] == lang for j in judges)
    if rubric == "score":
        assert [j["score"] for j in judges] == [9, 3, 9]
        assert judges[1]["verdicts"] == {"helpfulness": 3, "correctness": 3, "fit": 3}
    else:
        assert [j["rating"] for j in judges] == ["A", "C", "A"] and [j["score"] for j in judges] == [4, 2, 4]
        assert judges[1]["verdicts"] == {"valid_instruction": True, "appropriate_input": True, "correct_output": False}
    assert all(j["rationale"] for j in judges)
    assert summary["judged"] == 3 and summary["unparsable"] == 0
    assert judge_server.count == 3
    # the prompt was the record's language's
    assert ("指令" in judge_server.bodies[0]["messages"][0]["content"]) == (lang == "zh")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_pairwise_both_orders_and_position_bias(judge_server, tmp_path, lang):
    zh = lang == "zh"
    good, bad = ("好：正确。", "差：错误。") if zh else ("GOOD answer.", "BAD answer.")
    records = [Record("Q1" if not zh else "问题一", output=bad, meta={"output_b": good}, lang=lang),
               Record("Q2" if not zh else "问题二", output=good, meta={"output_b": bad}, lang=lang),
               Record("BIAS question" if not zh else "BIAS 问题", output=good, meta={"output_b": bad}, lang=lang)]
    summary = judge_records(records, JudgeConfig(rubric="pairwise"), llm(judge_server), tmp_path, progress=False)
    judges = [r["meta"]["judge"] for r in read_out(tmp_path)]
    assert [j["winner"] for j in judges] == ["B", "A", "tie"]
    assert [j["score"] for j in judges] == [0.0, 1.0, 0.5]
    assert judges[2]["verdicts"] == {"ab": "A", "ba": "B"} and judges[2]["position_consistent"] is False
    assert judges[0]["position_consistent"] is True
    assert judge_server.count == 6  # both orders for each pair
    # the second request of each pair shows B first
    second = judge_server.bodies[1]["messages"][0]["content"]
    assert second.index(good) < second.index(bad)
    assert summary["position_bias_rate"] == pytest.approx(1 / 3, abs=1e-3)


def test_unparsable_is_retried_then_recorded_raw(judge_server, tmp_path):
    records = [Record("GARBLE-ONCE task", output="GOOD"), Record("GARBLE-ALWAYS task", output="GOOD"),
               Record("Plain task", output="BAD")]
    summary = judge_records(records, JudgeConfig(rubric="score"), llm(judge_server), tmp_path, progress=False)
    judges = [r["meta"]["judge"] for r in read_out(tmp_path)]
    assert judges[0]["score"] == 9 and judges[0]["attempts"] == 2 and "error" not in judges[0]
    assert judges[1]["score"] is None and judges[1]["error"] == "unparsable" and judges[1]["attempts"] == 2
    assert judges[1]["raw"] == "I am not sure what to say about this one."
    assert judges[2]["score"] == 3 and judges[2]["attempts"] == 1
    assert judge_server.count == 5  # 3 first asks + 2 stricter retries
    strict = [b for b in judge_server.bodies if len(b["messages"]) == 3]
    assert len(strict) == 2 and "could not be read" in strict[0]["messages"][2]["content"]
    assert strict[0]["messages"][1]["role"] == "assistant"
    assert summary["unparsable"] == 1 and summary["retried"] == 2
    # --no-retry-unparsable: recorded raw after one ask
    again = judge_records(records[1:2], JudgeConfig(rubric="score", retry_unparsable=False), llm(judge_server),
                          tmp_path / "noretry", progress=False)
    assert again["unparsable"] == 1 and read_out(tmp_path / "noretry")[0]["meta"]["judge"]["attempts"] == 1


def test_requests_are_cached_a_rerun_sends_none(judge_server, tmp_path):
    config = JudgeConfig(rubric="self-instruct")
    judge_records(RECORDS["en"], config, llm(judge_server), tmp_path, progress=False)
    first = (tmp_path / "accepted.jsonl").read_bytes()
    sent = judge_server.count
    # lose the output and the checkpoint (a kill before the first checkpoint): every answer is in the cache
    (tmp_path / "accepted.jsonl").unlink()
    (tmp_path / "checkpoints.jsonl").unlink()
    judge_records(RECORDS["en"], config, llm(judge_server), tmp_path, progress=False)
    assert judge_server.count == sent
    assert (tmp_path / "accepted.jsonl").read_bytes() == first
    # the same call on a finished run sends nothing either
    judge_records(RECORDS["en"], config, llm(judge_server), tmp_path, progress=False)
    assert judge_server.count == sent


def test_budget_stops_between_records_and_resumes(judge_server, tmp_path):
    records = [Record(f"Task {i}", output="GOOD" if i % 2 else "BAD") for i in range(5)]
    config = JudgeConfig(rubric="score")
    with pytest.raises(BudgetExhausted):
        judge_records(records, config, LLMConfig(base_urls=[judge_server.url], model="judge-model", retry_base=0.01,
                                               max_requests=2),
                      tmp_path, progress=False)
    assert len(read_out(tmp_path)) == 2
    judge_records(records, config, llm(judge_server), tmp_path, progress=False)
    rows = read_out(tmp_path)
    assert [r["instruction"] for r in rows] == [r.instruction for r in records]
    assert [r["meta"]["judge"]["score"] for r in rows] == [3, 9, 3, 9, 3]
    assert judge_server.count == 5


def test_cli_judge_with_own_endpoint_and_gold(judge_server, tmp_path, capsys, monkeypatch):
    data = tmp_path / "in.jsonl"
    data.write_text("".join(r.to_json() + "\n" for r in RECORDS["en"]), encoding="utf-8")
    gold = tmp_path / "gold.jsonl"
    labelled = [Record("Name a colour.", "", "GOOD: blue.", meta={"human": {"score": 9, "keep": True}}),
                Record("Name a fruit.", "", "BAD: a chair.", meta={"human": {"score": 2, "keep": False}}),
                Record("Name a tree.", "", "GOOD: oak.", meta={"human": {"score": 8, "keep": True}}),
                Record("Name a bird.", "", "BAD: a rock.", meta={"human": {"score": 4, "keep": True}})]
    gold.write_text("".join(r.to_json() + "\n" for r in labelled), encoding="utf-8")
    # the generic endpoint is unreachable: the judge's own settings must be what is used
    monkeypatch.setenv("SFTDATA_JUDGE_BASE_URL", judge_server.url)
    code, out, err = run_cli(["judge", str(data), "--out", str(tmp_path / "j"), "--rubric", "score",
                              "--base-url", "http://127.0.0.1:9/v1", "--model", "cheap", "--judge-model", "strong",
                              "--gold", str(gold), "--no-progress"], capsys)
    assert code == 0, err
    assert {b["model"] for b in judge_server.bodies} == {"strong"}
    calibration = json.loads((tmp_path / "j" / "calibration.json").read_text())
    assert calibration["labelled"] == 4
    assert calibration["criteria"]["keep"] == {"n": 4, "accuracy": 0.75, "kappa": 0.5}
    assert calibration["spearman"]["rho"] == pytest.approx(0.894, abs=1e-3)
    assert "spearman=0.894" in out and "kappa=0.500" in out
    assert [r["meta"]["judge"]["score"] for r in read_out(tmp_path / "j")] == [9, 3, 9]


def test_cli_dry_run_sends_nothing(judge_server, tmp_path, capsys):
    data = tmp_path / "in.jsonl"
    data.write_text("".join(r.to_json() + "\n" for r in RECORDS["zh"]), encoding="utf-8")
    code, out, _ = run_cli(["judge", str(data), "--out", str(tmp_path / "j"), "--rubric", "pairwise", "--dry-run",
                            "--base-url", judge_server.url, "--model", "m", "--price-in", "1", "--price-out", "2"],
                           capsys)
    assert code == 0 and judge_server.count == 0
    assert "requests: 7" in out and "cost_usd" in out
    assert not (tmp_path / "j").exists()


def test_cli_errors_name_the_option(tmp_path, capsys):
    data = tmp_path / "in.jsonl"
    data.write_text(Record("Task", output="x").to_json() + "\n", encoding="utf-8")
    code, _, err = run_cli(["judge", str(data), "--out", str(tmp_path / "j"), "--rubric", "pairwise"], capsys)
    assert code == 2 and "meta.output_b" in err and "--rubric" in err
    code, _, err = run_cli(["judge", "--out", str(tmp_path / "j"), "--gold", str(tmp_path / "nope.jsonl")], capsys)
    assert code == 2 and "--gold" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "ok", "output": "x"}\nnot json\n', encoding="utf-8")
    code, _, err = run_cli(["judge", str(bad), "--out", str(tmp_path / "j2")], capsys)
    assert code == 2 and "bad.jsonl:2" in err
    assert re.search(r"judge_files|Traceback", err) is None
    assert judge_files  # the library entry point the CLI uses


def test_gold_labels_from_the_review_pages_feedback(judge_server, tmp_path):
    from sftdata.judge import append_feedback

    gold = tmp_path / "reviewed.jsonl"
    rows = [Record("Name a colour.", output="GOOD: blue."), Record("Name a fruit.", output="BAD: a chair."),
            Record("Name a tree.", output="GOOD: oak.")]
    gold.write_text("".join(r.to_json() + "\n" for r in rows), encoding="utf-8")
    for record, action in zip(rows, ("keep", "reject", "reject")):
        append_feedback(tmp_path / "feedback.jsonl", {"id": record.id, "index": 0, "action": action})
    summary = judge_records([], JudgeConfig(rubric="score", gold=str(gold)), llm(judge_server), tmp_path / "j",
                            progress=False)
    keep = summary["calibration"]["criteria"]["keep"]
    assert keep["n"] == 3 and keep["accuracy"] == pytest.approx(0.667, abs=1e-3)


def test_judge_endpoint_resolution_never_sends_a_key_to_another_host(monkeypatch):
    from sftdata.judge import judge_llm_config

    for name in ("SFTDATA_JUDGE_MODEL", "SFTDATA_JUDGE_BASE_URL", "SFTDATA_JUDGE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    generic = LLMConfig(base_urls=["http://gen/v1"], model="cheap", api_key="sk-gen")
    same = judge_llm_config(JudgeConfig(judge_model="strong"), generic)
    assert (same.base_urls, same.model, same.api_key) == (["http://gen/v1"], "strong", "sk-gen")
    other = judge_llm_config(JudgeConfig(judge_base_url=["http://judge/v1"], judge_model="strong"), generic)
    assert (other.base_urls, other.api_key) == (["http://judge/v1"], None)
    monkeypatch.setenv("SFTDATA_JUDGE_API_KEY", "sk-judge")
    monkeypatch.setenv("SFTDATA_JUDGE_MODEL", "env-judge")
    env = judge_llm_config(JudgeConfig(judge_base_url=["http://judge/v1"]), generic)
    assert (env.model, env.api_key) == ("env-judge", "sk-judge")
    assert judge_llm_config(JudgeConfig(), LLMConfig()).backend == "local"
