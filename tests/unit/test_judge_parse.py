"""The judge's reply readers against a corpus of realistic replies (tests/data/judge/replies.jsonl):
English and Chinese, labelled and inline verdicts, JSON in any key order, code fences, Chinese numerals,
full-width digits, reasoning models' <think> blocks, verdict before or after the reasoning, and replies
with no verdict at all (which must read as None: never a default score)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sftdata.judge import parse, rubrics

CORPUS = [json.loads(line) for line in
          (Path(__file__).resolve().parents[1] / "data" / "judge" / "replies.jsonl").read_text("utf-8").splitlines()]


def test_corpus_is_big_and_bilingual():
    assert len(CORPUS) >= 40
    chinese = [c for c in CORPUS if any("\u4e00" <= ch <= "\u9fff" for ch in c["reply"])]
    assert len(chinese) >= 15
    assert {c["rubric"] for c in CORPUS} == {"score", "self-instruct", "pairwise"}
    assert sum(c["expect"] is None for c in CORPUS) >= 4


@pytest.mark.parametrize("case", CORPUS, ids=[f"{i}-{c['rubric']}" for i, c in enumerate(CORPUS)])
def test_reply_reads_as_intended(case):
    reading = rubrics.read(case["rubric"], case["reply"])
    if case["rubric"] == "score":
        got = reading.score
        expect = None if case["expect"] is None else float(case["expect"])
    elif case["rubric"] == "self-instruct":
        got = reading.rating
        expect = case["expect"]
        assert reading.score == (rubrics.RATING_SCORES[expect] if expect else None)
    else:
        got = reading.winner
        expect = case["expect"]
    assert got == expect, case["reply"]
    assert reading.ok == (expect is not None)


def test_self_instruct_questions():
    reading = rubrics.read("self-instruct", "Valid task: yes\nAppropriate input: no\nCorrect output: yes\nRating: B")
    assert reading.verdicts == {"valid_instruction": True, "appropriate_input": False, "correct_output": True}
    zh = rubrics.read("self-instruct", "有效任务：是\n输入合适：否\n输出正确：不是\n评级：C")
    assert zh.verdicts == {"valid_instruction": True, "appropriate_input": False, "correct_output": False}
    numbered = rubrics.read("self-instruct", "1. Yes\n2. No\n3. No\nRating: D")
    assert numbered.verdicts == {"valid_instruction": True, "appropriate_input": False, "correct_output": False}


def test_score_criteria_and_rationale():
    reading = rubrics.read("score", "Helpfulness: 8\nCorrectness: 6\nFit: 9\nScore: 7\nReason: one slip.")
    assert reading.verdicts == {"helpfulness": 8, "correctness": 6, "fit": 9}
    assert reading.rationale == "one slip."
    assert rubrics.read("score", "有用性：8\n正确性：9\n契合度：7\n评分：8\n理由：格式略有偏差。").verdicts == \
        {"helpfulness": 8, "correctness": 9, "fit": 7}
    assert rubrics.read("score", '{"score": 4, "reason": "too short"}').rationale == "too short"


@pytest.mark.parametrize("text,value", [("7", 7), ("七", 7), ("十", 10), ("十二", 12), ("二十", 20), ("两", 2),
                                        ("7.5", 7.5), ("abc", None), ("十十", None)])
def test_chinese_numbers(text, value):
    assert parse.cn_number(text) == value


def test_out_of_range_scores_are_not_scores():
    assert parse.parse_score("Score: 42") is None
    assert parse.parse_score("Score: 0") is None
    assert parse.parse_score("The answer is 3.14159, score: 8") == 8
