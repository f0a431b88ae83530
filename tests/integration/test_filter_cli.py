"""``sftdata filter`` end to end on real files: outputs, reasons, --against, exactness, bad input."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from sftdata.cli import main
from sftdata.filter.rules import RULES


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


SEEDS = [{"id": "seed_0", "name": "tips", "instruction": "Give three tips for staying healthy.",
          "instances": [{"input": "", "output": "Eat well, sleep well, move every day."}], "is_classification": False},
         {"id": "seed_1", "name": "poem", "instruction": "请写一首关于秋天的短诗。",
          "instances": [{"input": "", "output": "秋风起，落叶黄。"}], "is_classification": False}]

ROWS = [  # (expected reason, row)
    (None, {"instruction": "Explain how photosynthesis works in simple terms.", "output": "Plants turn light into sugar.",
            "lang": "en"}),
    ("rouge", {"instruction": "Give three tips for staying healthy!", "output": "Drink water.", "lang": "en"}),
    ("rouge", {"instruction": "Explain how photosynthesis works in simple words.", "output": "Light to sugar.",
               "lang": "en"}),
    ("blacklist", {"instruction": "Describe the image below in one sentence.", "output": "A cat.", "lang": "en"}),
    ("length", {"instruction": "Say hi.", "output": "Hi!", "lang": "en"}),
    ("format", {"instruction": "Write a program that reverses a string in Python.", "output": "s[::-1]", "lang": "en"}),
    ("language", {"instruction": "Escribe un poema corto sobre el mar y la luna.", "output": "Mar...", "lang": "en"}),
    ("empty_output", {"instruction": "List four planets of the solar system.", "output": "", "lang": "en"}),
    ("output_equals_input", {"instruction": "Correct the grammar of the sentence.", "input": "He go home.",
                             "output": "He go home.", "lang": "en"}),
    ("ends_with_colon", {"instruction": "Name the steps to boil an egg.", "output": "Here are the steps:",
                         "lang": "en"}),
    (None, {"instruction": "Correct the grammar of the sentence.", "input": "She have a cat.",
            "output": "She has a cat.", "lang": "en"}),
    ("duplicate", {"instruction": "Correct the grammar of the sentence.", "input": "She have a cat.",
                   "output": "She has a cat.", "lang": "en"}),
    ("rouge", {"instruction": "请写一首关于春天的短诗。", "output": "春风吹，花儿开。", "lang": "zh"}),  # vs the seed
    (None, {"instruction": "列出五种常见的水果。", "output": "苹果、香蕉、橙子、葡萄、西瓜。", "lang": "zh"}),
    ("rouge", {"instruction": "列出五种常见的水果！", "output": "苹果。", "lang": "zh"}),
    ("blacklist", {"instruction": "请描述这张图片里的内容。", "output": "一只猫。", "lang": "zh"}),
    ("language", {"instruction": "Write a short poem about the autumn wind.", "output": "Wind...", "lang": "zh"}),
]


def test_filter_writes_accepted_and_rejected_with_reasons(tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [row for _, row in ROWS])
    seeds = write_jsonl(tmp_path / "seeds.jsonl", SEEDS)
    out = tmp_path / "out"
    code, stdout, err = run_cli(["filter", str(source), "--out", str(out), "--against", str(seeds), "--json"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    accepted, rejected = read_jsonl(out / "accepted.jsonl"), read_jsonl(out / "rejected.jsonl")
    assert summary["input"] == len(ROWS) and summary["against"] == 2
    assert summary["accepted"] == len(accepted) == sum(r is None for r, _ in ROWS)
    assert [r["reason"] for r in rejected] == [r for r, _ in ROWS if r is not None]
    expected_counts = {rule: sum(r == rule for r, _ in ROWS) for rule in RULES}
    assert summary["by_reason"] == expected_counts
    assert all(r["stage"] == "filter" and set(r) == {"record", "stage", "reason", "detail"} for r in rejected)
    by_text = {r["record"]["instruction"]: r for r in rejected}
    seed_hit = by_text["Give three tips for staying healthy!"]["detail"]
    assert seed_hit["most_similar"] == "Give three tips for staying healthy." and seed_hit["score"] > 0.7
    zh_hit = by_text["请写一首关于春天的短诗。"]["detail"]
    assert zh_hit["most_similar"] == "请写一首关于秋天的短诗。"
    assert by_text["Describe the image below in one sentence."]["detail"] == {"word": "image"}
    for row in accepted:
        assert {"rouge_max", "most_similar"} <= set(row["meta"])
        assert row["meta"]["rouge_max"] <= 0.7
    # the seeds themselves are never written out
    assert not any(r["instruction"] == SEEDS[0]["instruction"] for r in accepted)
    assert json.loads((out / "filter_summary.json").read_text())["accepted"] == summary["accepted"]


def test_text_summary_and_rerun_is_identical(tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [row for _, row in ROWS])
    outputs = []
    for name in ("a", "b"):
        code, stdout, err = run_cli(["filter", str(source), "--out", str(tmp_path / name), "--no-progress"], capsys)
        assert code == 0, err
        assert "accepted:" in stdout and "by_reason:" in stdout and "rouge:" in stdout
        outputs.append([(tmp_path / name / f).read_bytes() for f in ("accepted.jsonl", "rejected.jsonl")])
    assert outputs[0] == outputs[1]


def test_decisions_equal_the_alpaca_scan(tmp_path, capsys):
    """--rouge-tokenizer rouge keeps exactly what scoring against every kept instruction keeps."""
    rng = random.Random(5)
    vocab = "write a short story poem about the sea sky city river night morning in five words lines".split()
    texts: list[str] = []
    for _ in range(160):
        if texts and rng.random() < 0.35:
            words = rng.choice(texts).split()
            words[rng.randrange(len(words))] = rng.choice(vocab)
            texts.append(" ".join(words))
        else:
            texts.append(" ".join(rng.choice(vocab) for _ in range(rng.randint(4, 12))))
    texts = list(dict.fromkeys(texts))  # the same instruction twice is one task's instances (stage docstring)
    source = write_jsonl(tmp_path / "in.jsonl", [{"instruction": t} for t in texts])
    code, _out, err = run_cli(["filter", str(source), "--out", str(tmp_path / "o"), "--rouge-tokenizer", "rouge",
                               "--no-rule", "length,blacklist,format,language,duplicate", "--json"], capsys)
    assert code == 0, err
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    kept: list[str] = []
    for text in texts:
        if all(scorer.score(text, k)["rougeL"].fmeasure <= 0.7 for k in kept):
            kept.append(text)
    assert [r["instruction"] for r in read_jsonl(tmp_path / "o" / "accepted.jsonl")] == kept
    assert len(kept) < len(texts)


def test_instruction_only_input_skips_instance_rules(tmp_path, capsys):
    rows = [{"instruction": "Explain how a rainbow forms in the sky."},
            {"instruction": "Name four instruments used in a symphony orchestra."}]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    code, stdout, err = run_cli(["filter", str(source), "--out", str(tmp_path / "o"), "--json"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["accepted"] == 2 and summary["instance_rules"] is False
    code, stdout, _ = run_cli(["filter", str(source), "--out", str(tmp_path / "o2"), "--instance-rules", "--json"],
                              capsys)
    assert json.loads(stdout)["by_reason"]["empty_output"] == 2


def test_switching_rules_off_and_threshold(tmp_path, capsys):
    rows = [{"instruction": "Give three tips for staying healthy."},
            {"instruction": "Give three tips for staying healthy!"}]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    code, stdout, _ = run_cli(["filter", str(source), "--out", str(tmp_path / "a"), "--no-rule", "rouge", "--json"],
                              capsys)
    assert code == 0 and json.loads(stdout)["accepted"] == 2
    code, stdout, _ = run_cli(["filter", str(source), "--out", str(tmp_path / "b"), "--rouge-threshold", "1.0",
                               "--json"], capsys)
    assert code == 0 and json.loads(stdout)["accepted"] == 2


@pytest.mark.parametrize("args, message", [
    (["--rouge-threshold", "1.5"], "--rouge-threshold"),
    (["--rouge-threshold", "-0.2"], "--rouge-threshold"),
    (["--no-rule", "nonsense"], "--no-rule"),
    (["--lang", "klingon"], "--lang"),
    (["--min-words", "9", "--max-words", "4"], "--max-words"),
])
def test_bad_options_exit_2(tmp_path, capsys, args, message):
    source = write_jsonl(tmp_path / "in.jsonl", [row for _, row in ROWS[:2]])
    code, _out, err = run_cli(["filter", str(source), "--out", str(tmp_path / "o"), *args], capsys)
    assert code == 2 and message in err, err
    assert not (tmp_path / "o" / "accepted.jsonl").exists()


def test_bad_line_names_file_and_line_exit_2_no_output(tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [row for _, row in ROWS[:3]])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "Name a colour of the sky."}\n{"instruction": "Name a fruit that is red."}\n'
                   '{"instruction": "broken\n', encoding="utf-8")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", "from sftdata.cli import main; main()", "filter", str(good),
                             str(bad), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert f"{bad}:3" in result.stderr and "Traceback" not in result.stderr
    assert not (out / "accepted.jsonl").exists() and not (out / "rejected.jsonl").exists()
    missing = subprocess.run([sys.executable, "-c", "from sftdata.cli import main; main()", "filter", str(good),
                              "--out", str(out), "--against", str(tmp_path / "nope.jsonl")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "nope.jsonl" in missing.stderr
    assert not (out / "accepted.jsonl").exists()
