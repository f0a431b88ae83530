"""``sftdata clean`` end to end: accepted / rejected files, counts per rule, switches, bad input."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_cli

from sftdata.core.records import read_records

_WORDS = [f"{a}{b}" for a in ("sea", "sky", "sun", "rain", "wind", "tree", "rock", "bird")
          for b in ("", "s", "ing", "er", "ed", "ly", "ful", "less")]
_CHARS = "海天日雨风树石鸟山水云花草木月星光影声色江河湖泊林田野路桥城村"


def make_input(path: Path) -> dict[str, int]:
    """Good records in both languages plus known noise; returns the expected removals per rule."""
    rng = random.Random(0)
    rows: list[dict] = []

    def length() -> int:  # spread like real replies: a few words to a few paragraphs
        return int(math.exp(rng.uniform(math.log(2), math.log(150))))

    for i in range(30):
        text = " ".join(rng.choice(_WORDS) for _ in range(length())) + "."
        rows.append({"instruction": f"Describe scene {i}.", "output": text, "lang": "en"})
        text = "".join(rng.choice(_CHARS) for _ in range(length())) + "。"
        rows.append({"instruction": f"描写场景{i}。", "output": text, "lang": "zh"})
    noise = [
        ("refusal", {"instruction": "Tell me a secret.", "output": "I'm sorry, but I can't help with that.",
                     "lang": "en"}),
        ("refusal", {"instruction": "告诉我一个秘密。", "output": "抱歉，我无法满足这个请求。", "lang": "zh"}),
        ("truncated", {"instruction": "Describe the harbour.", "output": "The harbour is busy.",
                       "lang": "en", "meta": {"finish_reason": "length"}}),
        ("repeats-instruction", {"instruction": "Write a poem about the river.",
                                 "output": "Write a poem about the river.", "lang": "en"}),
        ("repetition", {"instruction": "描写大海。", "output": "大海很美。" + "我爱大海" * 12, "lang": "zh"}),
        ("length-outlier", {"instruction": "Describe the whole coast.",
                            "output": " ".join(rng.choice(_WORDS) for _ in range(20000)) + ".", "lang": "en"}),
        ("empty", {"instruction": "Say something.", "output": "\u200b \u200b", "lang": "en"}),
    ]
    rows += [row for _, row in noise]
    # sharegpt and messages rows: clean reads every supported shape
    rows.append({"conversations": [{"from": "human", "value": "Name a colour."},
                                   {"from": "gpt", "value": "<b>Blue</b>&nbsp;is calm."}]})
    rows.append({"messages": [{"role": "user", "content": "Contact?"},
                              {"role": "assistant", "content": "Write to ann@example.com or call 138-1234-5678."}]})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    expected: dict[str, int] = {}
    for rule, _ in noise:
        expected[rule] = expected.get(rule, 0) + 1
    return expected




def test_clean_writes_accepted_rejected_and_stats(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    expected = make_input(source)
    out = tmp_path / "clean"
    code, stdout, err = run_cli(["clean", str(source), "--out", str(out), "--mask-pii", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["removed"] == expected
    assert summary["records"] == 69 and summary["kept"] == 62
    assert summary["normalized"]["html"] == 1 and summary["pii_masked"] == {"EMAIL": 1, "PHONE": 1}

    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(r["reason"] for r in rejected) == sorted(r for r, n in expected.items() for _ in range(n))
    assert all(r["stage"] == "clean" and isinstance(r["detail"], dict) for r in rejected)
    refused = next(r for r in rejected if r["reason"] == "refusal")
    assert refused["record"]["output"] == "I'm sorry, but I can't help with that."  # as it was read

    accepted = list(read_records(out / "accepted.jsonl"))
    assert len(accepted) == 62
    outputs = {r.instruction: r.output for r in accepted}
    assert outputs["Name a colour."] == "Blue is calm."
    assert outputs["Contact?"] == "Write to [EMAIL] or call [PHONE]."
    stats = json.loads((out / "stats.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert stats["removed"] == expected and config["mask_pii"] is True and config["outlier_z"] == 3.5


def test_rules_switch_off_from_the_command_line(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    make_input(source)
    out = tmp_path / "clean"
    code, stdout, err = run_cli(["clean", str(source), "--out", str(out), "--no-rule", "refusal",
                                 "--no-rule", "length-outlier,normalize", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert "refusal" not in summary["removed"] and "length-outlier" not in summary["removed"]
    assert summary["normalized"] == {} and summary["pii_masked"] == {}
    outputs = {r.instruction: r.output for r in read_records(out / "accepted.jsonl")}
    assert outputs["Name a colour."] == "<b>Blue</b>&nbsp;is calm."
    assert "ann@example.com" in outputs["Contact?"]


def test_outlier_threshold_option(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    make_input(source)
    code, stdout, _err = run_cli(["clean", str(source), "--out", str(tmp_path / "c"), "--outlier-z", "100",
                                  "--json"], capsys)
    assert code == 0 and "length-outlier" not in json.loads(stdout)["removed"]


def test_rerun_is_identical(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    make_input(source)
    texts = []
    for _ in range(2):
        code, _out, err = run_cli(["clean", str(source), "--out", str(tmp_path / "c")], capsys)
        assert code == 0, err
        texts.append([(tmp_path / "c" / n).read_bytes() for n in ("accepted.jsonl", "rejected.jsonl")])
    assert texts[0] == texts[1]


@pytest.mark.parametrize("args, message", [
    (["--no-rule", "nope"], "--no-rule: unknown rule 'nope'"),
    (["--outlier-z", "0"], "--outlier-z: must be above 0"),
])
def test_bad_options_exit_2(tmp_path, capsys, args, message):
    source = tmp_path / "in.jsonl"
    make_input(source)
    code, _out, err = run_cli(["clean", str(source), "--out", str(tmp_path / "c"), *args], capsys)
    assert code == 2 and message in err


def test_output_may_not_overwrite_input(tmp_path, capsys):
    out = tmp_path / "c"
    out.mkdir()
    make_input(out / "accepted.jsonl")
    code, _out, err = run_cli(["clean", str(out / "accepted.jsonl"), "--out", str(out)], capsys)
    assert code == 2 and "--out" in err


def test_bad_input_names_file_line_exit_2(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "fine", "output": "ok"}\n{"instruction": "x", "output": 7}\n', encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", "from sftdata.cli import main; main()", "clean", str(path),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"{path}:2: field 'output' must be a string, got int" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out" / "accepted.jsonl").exists()


def test_outlier_short_option(tmp_path, capsys):
    rng = random.Random(5)
    rows = [{"instruction": f"Describe scene {i}.", "lang": "en",
             "output": " ".join(rng.choice(_WORDS) for _ in range(rng.randint(80, 120))) + "."} for i in range(30)]
    rows.append({"instruction": "Describe the last scene.", "output": "Nice.", "lang": "en"})
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    code, stdout, _err = run_cli(["clean", str(source), "--out", str(tmp_path / "a"), "--json"], capsys)
    assert code == 0 and json.loads(stdout)["removed"] == {}
    code, stdout, _err = run_cli(["clean", str(source), "--out", str(tmp_path / "b"), "--outlier-short",
                                  "--json"], capsys)
    assert code == 0 and json.loads(stdout)["removed"] == {"length-outlier": 1}
    rejected = json.loads((tmp_path / "b" / "rejected.jsonl").read_text(encoding="utf-8"))
    assert rejected["record"]["output"] == "Nice." and rejected["detail"]["side"] == "short"
    assert json.loads((tmp_path / "b" / "config.json").read_text())["outlier_short"] is True
