"""``sftdata generate`` against the loopback OpenAI server: both modes, both languages, every reply
shape, cleanup reasons, resume after a kill, budget stop and resume, determinism from the cache."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from generate_replies import instruction_items, make_reply
from openai_server import Reply
from run_files import body_key, cache_keys
from run_files import read_rows as read
from seed_tasks import SEEDS_EN, SEEDS_ZH, write_seeds

from sftdata.cli import main
from sftdata.generate import GenerateConfig, generate
from sftdata.llm.client import LLMConfig

ROOT = Path(__file__).resolve().parents[2]

@pytest.fixture
def seeds_en(tmp_path):
    return write_seeds(tmp_path / "seeds_en.jsonl", SEEDS_EN)


@pytest.fixture
def seeds_zh(tmp_path):
    return write_seeds(tmp_path / "seeds_zh.jsonl", SEEDS_ZH)


def llm_config(*servers, **overrides) -> LLMConfig:
    values = dict(base_urls=[s.url for s in servers], model="test-model", concurrency=8, max_attempts=2,
                  retry_base=0.01, timeout=10)
    values.update(overrides)
    return LLMConfig(**values)


def check_run(out: Path, summary: dict, target: int, lang: str, source: str) -> tuple[list, list, list]:
    """What every finished run must satisfy; returns (accepted, rejected, pool) rows."""
    accepted, rejected, pool = read(out / "accepted.jsonl"), read(out / "rejected.jsonl"), read(out / "instructions.jsonl")
    assert summary["instructions"] == target
    assert summary["records"] == len(accepted) > 0
    ids = [row["id"] for row in accepted]
    assert len(ids) == len(set(ids)), "duplicate records"
    per_task = Counter(row["instruction"] for row in accepted)
    assert sum(1 for row in pool if row["instances"] > 0) == target
    assert len({row["instruction"] for row in pool}) == len(pool)
    for row in pool:
        assert per_task.get(row["instruction"], 0) == row["instances"]
        assert "rouge_max" in row and "most_similar" in row and "is_classification" in row
    for row in accepted:
        assert row["instruction"].strip() and row["output"].strip()
        assert row["lang"] == lang and row["source"] == source
        assert row["meta"]["model"] == "test-model" and "rouge_max" in row["meta"]
    for row in rejected:
        assert row["stage"] == "generate" and row["reason"] and row["detail"]["level"]
        if row["reason"] == "parse_error":
            assert row["detail"]["raw"].strip()
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["finished"] is True and stats["table1"] == summary["table1"]
    table = summary["table1"]
    assert table["instructions"] == target and table["instances"] == len(accepted)
    assert table["instances_with_empty_input"] == sum(1 for row in accepted if not row["input"])
    assert table["avg_output_length"] > 0
    flt = summary["instruction_filter"]
    assert flt["parsed"] == flt["accepted"] + sum(v for k, v in flt.items() if k.startswith("rejected_"))
    levels = Counter()  # a rejection repeated in the run is one line with its count
    for row in rejected:
        levels[row["detail"]["level"]] += row.get("count", 1)
    assert flt["parsed"] - flt["accepted"] == levels["instruction"]
    inst = summary["instance_filter"]
    assert inst["parsed"] - inst["accepted"] == levels["instance"]
    return accepted, rejected, pool


def reasons(rows: list[dict], level: str | None = None) -> Counter:
    return Counter(r["reason"] for r in rows if level is None or r["detail"]["level"] == level)


# ---------------------------------------------------------------- self-instruct

def test_self_instruct_english(tmp_path, make_server, seeds_en):
    server = make_server(reply=make_reply([s[0] for s in SEEDS_EN], "en"))
    config = GenerateConfig(seeds=[str(seeds_en)], num_instructions=40, instances_per_task=3)
    summary = generate(config, llm_config(server), tmp_path / "run", progress=False)
    accepted, rejected, pool = check_run(tmp_path / "run", summary, 40, "en", "self-instruct")
    got = reasons(rejected)
    for reason in ("rouge", "parse_error", "empty_output", "output_equals_input", "inconsistent_outputs",
                   "duplicate", "truncated"):
        assert got[reason] > 0, f"no {reason} rejection in {got}"
    by_rule = reasons(rejected, "instruction")
    assert by_rule["duplicate"] > 0  # exact copies of seeds
    assert any(by_rule[r] for r in by_rule if r not in ("rouge", "duplicate", "parse_error", "truncated", "surplus")), \
        f"the blacklisted instruction was not rejected by a rule: {by_rule}"
    # classification: yes, no and unknown (recorded as null, never guessed), and output-first for yes
    flags = Counter(row["is_classification"] for row in pool)
    assert flags[True] and flags[False] and flags[None]
    for row in accepted:
        assert row["meta"]["format"] == ("output_first" if row["is_classification"] else "input_first")
        if row["is_classification"]:
            assert row["output"] in ("Positive", "Negative")
    assert summary["replies"]["instructions_unparsable"] > 0
    assert summary["replies"]["classification_unknown"] == flags[None]
    # every instruction a reply held was recovered by the parser, whatever the reply's shape
    seen = {row["instruction"] for row in pool} | {r["record"]["instruction"] for r in rejected
                                                   if r["detail"]["level"] == "instruction"}
    seeds = [s[0] for s in SEEDS_EN]
    for body in server.bodies:
        prompt = body["messages"][-1]["content"]
        if prompt.startswith("Come up with a series of tasks"):
            for item in instruction_items(prompt, body["seed"], "en", seeds):
                assert item in seen, f"lost {item!r}"


def test_self_instruct_chinese_rejects_other_languages(tmp_path, make_server, seeds_zh):
    server = make_server(reply=make_reply([s[0] for s in SEEDS_ZH], "zh"))
    config = GenerateConfig(seeds=[str(seeds_zh)], num_instructions=25, instances_per_task=3)
    summary = generate(config, llm_config(server), tmp_path / "run", progress=False)
    assert summary["lang"] == "zh"  # from the seeds
    accepted, rejected, pool = check_run(tmp_path / "run", summary, 25, "zh", "self-instruct")
    language = [r for r in rejected if r["reason"] == "language"]
    assert language and all(r["record"]["instruction"].startswith("Describe") for r in language)
    assert reasons(rejected)["rouge"] > 0
    assert all(row["instruction"].startswith("请") for row in pool)
    prompt = server.bodies[0]["messages"][-1]["content"]
    # the Chinese template, with its seed tasks: not the English one
    assert prompt.startswith("请想出一系列") and "每个任务是一条指令" in prompt
    assert "Come up with" not in prompt
    clf = [row for row in accepted if row["is_classification"]]
    assert clf and all(row["output"] in ("正面", "负面") for row in clf)
    # lengths in characters for Chinese
    lengths = [len("".join(row["instruction"].split())) for row in pool if row["instances"]]
    assert summary["table1"]["avg_instruction_length"] == round(sum(lengths) / len(lengths), 2)


# ---------------------------------------------------------------- alpaca

@pytest.mark.parametrize("lang", ["en", "zh"])
def test_alpaca_mode(tmp_path, make_server, seeds_en, seeds_zh, lang):
    seeds = SEEDS_EN if lang == "en" else SEEDS_ZH
    server = make_server(reply=make_reply([s[0] for s in seeds], lang))
    config = GenerateConfig(seeds=[str(seeds_en if lang == "en" else seeds_zh)], num_instructions=30,
                            mode="alpaca", alpaca_tasks_per_request=5, lang=lang)
    summary = generate(config, llm_config(server), tmp_path / "run", progress=False)
    accepted, rejected, pool = check_run(tmp_path / "run", summary, 30, lang, "alpaca")
    assert len(accepted) == len(pool) == 30
    assert all(row["is_classification"] is None for row in accepted)
    got = reasons(rejected)
    assert got["empty_output"] > 0 and got["truncated"] > 0
    prompt = server.bodies[0]["messages"][-1]["content"]
    assert ("指令：" in prompt and "输出：" in prompt) if lang == "zh" else ("Instruction:" in prompt)
    assert server.bodies[0]["temperature"] == 1.0 and server.bodies[0]["top_p"] == 1.0


# ---------------------------------------------------------------- sampling and prompts

def test_requests_follow_the_original_sampling(tmp_path, make_server, seeds_en):
    server = make_server(reply=make_reply([s[0] for s in SEEDS_EN], "en"))
    config = GenerateConfig(seeds=[str(seeds_en)], num_instructions=5, instructions_per_request=4,
                            seed_tasks_in_prompt=3, machine_tasks_in_prompt=1)
    generate(config, llm_config(server), tmp_path / "run", progress=False)
    kinds = Counter()
    for body in server.bodies:
        prompt = body["messages"][-1]["content"]
        if prompt.startswith("Come up with a series of tasks"):
            kinds["instructions"] += 1
            assert (body["temperature"], body["top_p"]) == (0.7, 0.5)
            listed = [line for line in prompt.split("\n") if line[:2].rstrip(".").isdigit() and ". " in line]
            assert len(listed) == 4 and prompt.rstrip().endswith("5.")  # 3 seed + 1 machine, then "5."
        elif "Is it classification?" in prompt:
            kinds["classify"] += 1
            assert body["temperature"] == 0.0
        else:
            kinds["instances"] += 1
            assert body["temperature"] == 0.0
    assert kinds["instructions"] and kinds["classify"] and kinds["instances"]
    seeds = {body["seed"] for body in server.bodies}
    assert len(seeds) > 1  # per-request seeds, derived from --seed


def test_failed_requests_are_retried_then_given_up(tmp_path, make_server, seeds_en):
    """A classification that fails every retry is tried in later rounds, then recorded as unknown."""
    answer = make_reply([s[0] for s in SEEDS_EN], "en")

    def reply(body, n):
        prompt = body["messages"][-1]["content"]
        if "Is it classification?" in prompt and prompt.rstrip().split("Task: ")[-1].startswith("Rank"):
            return Reply(status=500, text="overloaded")
        return answer(body, n)

    server = make_server(reply=reply)
    config = GenerateConfig(seeds=[str(seeds_en)], num_instructions=25, instances_per_task=3)
    summary = generate(config, llm_config(server, fail_after=1000), tmp_path / "run", progress=False)
    _, _, pool = check_run(tmp_path / "run", summary, 25, "en", "self-instruct")
    ranked = [row for row in pool if row["instruction"].startswith("Rank")]
    assert ranked and all(row["is_classification"] is None and row["classify_answer"].startswith("error")
                          for row in ranked)
    failures = read(tmp_path / "run" / "failures.jsonl")
    assert len(failures) == 3 * len(ranked) == summary["replies"]["classify_failed"]
    assert all(f["tag"] == "generate:classify" for f in failures)


def test_a_model_that_never_follows_the_format_stalls_cleanly(tmp_path, make_server, seeds_en, capsys):
    server = make_server(reply=lambda body, n: "Task 4")
    code, stdout, stderr = run_main(capsys, "generate", "--seeds", str(seeds_en), "--out", str(tmp_path / "run"),
                                    "--base-url", server.url, "--model", "test-model", "--no-progress", "--json")
    summary = json.loads(stdout)
    assert code == 0 and summary["stalled"] and summary["instructions"] == 0 and "stopped early" in stderr
    assert summary["unparsable_replies"] == summary["replies"]["instructions_replies"] > 0
    rows = read(tmp_path / "run" / "rejected.jsonl")
    assert rows and all(r["reason"] == "parse_error" and r["detail"]["raw"] == "Task 4" for r in rows)


# ---------------------------------------------------------------- determinism, resume, budget

def test_two_runs_from_one_cache_are_byte_identical(tmp_path, make_server, seeds_en):
    server = make_server(reply=make_reply([s[0] for s in SEEDS_EN], "en"))
    config = GenerateConfig(seeds=[str(seeds_en)], num_instructions=20, instances_per_task=3, seed=7)
    generate(config, llm_config(server, concurrency=16), tmp_path / "a", progress=False)
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "cache.sqlite", tmp_path / "b" / "cache.sqlite")
    other = make_server(reply=lambda body, n: "something else entirely")
    generate(config, llm_config(other, concurrency=3), tmp_path / "b", progress=False)
    assert other.count == 0
    for name in ("accepted.jsonl", "rejected.jsonl", "instructions.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    # another --seed asks other questions
    generate(GenerateConfig(seeds=[str(seeds_en)], num_instructions=20, instances_per_task=3, seed=8),
             llm_config(server), tmp_path / "c", progress=False)
    assert (tmp_path / "a" / "accepted.jsonl").read_bytes() != (tmp_path / "c" / "accepted.jsonl").read_bytes()


def cli(*args: str, **kwargs) -> subprocess.Popen:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "SFTDATA_HOME": str(kwargs.pop("home"))}
    return subprocess.Popen([sys.executable, "-c", "from sftdata.cli import main; main()", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, **kwargs)


def test_resume_after_kill_loses_and_repeats_nothing(tmp_path, make_server, seeds_en):
    seeds = [s[0] for s in SEEDS_EN]
    args = ["generate", "--seeds", str(seeds_en), "--num-instructions", "40", "--instances-per-task", "3",
            "--model", "test-model", "--no-progress", "--concurrency", "4", "--round-size", "1"]
    reference = make_server(reply=make_reply(seeds, "en"))
    generate(GenerateConfig(seeds=[str(seeds_en)], num_instructions=40, instances_per_task=3, round_size=1),
             llm_config(reference, concurrency=4), tmp_path / "reference", progress=False)

    server = make_server(reply=make_reply(seeds, "en"), latency=0.1)
    out = tmp_path / "run"
    proc = cli(*args, "--out", str(out), "--base-url", server.url, home=tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline and len(read(out / "checkpoints.jsonl")) < 4:
        time.sleep(0.01)
    cached_at_checkpoint = len(cache_keys(out / "cache.sqlite"))
    while time.time() < deadline and len(cache_keys(out / "cache.sqlite")) == cached_at_checkpoint:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # mid-round: a request of round 5 answered and cached, the round not kept
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(read(out / "checkpoints.jsonl")) == 4
    before = cache_keys(out / "cache.sqlite")
    sent_before = server.count
    assert len(before) > cached_at_checkpoint and len(read(out / "instructions.jsonl")) < 40

    proc = cli(*args, "--out", str(out), "--base-url", server.url, home=tmp_path)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    resent = [body for body in server.bodies[sent_before:] if body_key(body) in before]
    assert not resent, f"{len(resent)} cached requests were sent again"
    assert json.loads((out / "stats.json").read_text())["llm"]["cached"] > 0  # the cut round replayed from cache
    for name in ("accepted.jsonl", "rejected.jsonl", "instructions.jsonl"):  # as if never killed
        assert without_server_ids(read(out / name)) == without_server_ids(read(tmp_path / "reference" / name)), name


def test_ctrl_c_saves_state_and_exits_130(tmp_path, make_server, seeds_en):
    seeds = [s[0] for s in SEEDS_EN]
    server = make_server(reply=make_reply(seeds, "en"), latency=0.1)
    out = tmp_path / "run"
    args = ["generate", "--seeds", str(seeds_en), "--num-instructions", "40", "--instances-per-task", "3",
            "--model", "test-model", "--no-progress", "--round-size", "1", "--out", str(out), "--base-url", server.url]
    proc = cli(*args, home=tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline and len(read(out / "checkpoints.jsonl")) < 2:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    kept = read(out / "accepted.jsonl")
    proc = cli(*args, home=tmp_path)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    final = read(out / "accepted.jsonl")
    assert final[: len(kept)] == kept and len({r["id"] for r in final}) == len(final)
    assert sum(1 for row in read(out / "instructions.jsonl") if row["instances"]) == 40


def without_server_ids(rows: list[dict]) -> list[dict]:
    """Rows without the ids a server hands out in arrival order (they differ between two servers)."""
    for row in rows:
        for meta in (row.get("meta"), row.get("record", {}).get("meta")):
            if meta:
                meta.pop("request_ids", None)
                meta.pop("request_id", None)
        row.pop("request_id", None)
    return rows


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """The real ``sftdata`` entry point in this process: exit code, stdout, stderr."""
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def test_max_requests_stops_cleanly_and_resumes(tmp_path, make_server, seeds_en, capsys):
    server = make_server(reply=make_reply([s[0] for s in SEEDS_EN], "en"))
    out = tmp_path / "run"
    args = ["generate", "--seeds", str(seeds_en), "--out", str(out), "--num-instructions", "30",
            "--base-url", server.url, "--model", "test-model", "--no-progress", "--json"]
    code, stdout, stderr = run_main(capsys, *args, "--max-requests", "5")
    assert code == 0 and "budget reached (--max-requests 5" in stderr, stderr
    assert server.count == 5
    stats = json.loads((out / "stats.json").read_text())
    assert stats["finished"] is False and stats["llm"]["sent"] == 5
    partial = read(out / "accepted.jsonl")

    code, stdout, stderr = run_main(capsys, *args, "--max-requests", "10000")
    assert code == 0, stderr
    summary = json.loads(stdout)
    accepted, _, _ = check_run(out, summary, 30, "en", "self-instruct")
    assert accepted[: len(partial)] == partial  # kept, not redone
    keys = [body_key(body) for body in server.bodies]
    assert len(keys) == len(set(keys)) == server.count  # nothing asked twice
    assert summary["llm"]["sent"] == server.count

    # a finished run re-run as it is sends nothing; a higher target continues it
    sent = server.count
    code, stdout, _ = run_main(capsys, *args)
    assert code == 0 and server.count == sent and json.loads(stdout)["instructions"] == 30
    code, stdout, _ = run_main(capsys, *args[:6], "35", *args[7:])
    assert code == 0 and json.loads(stdout)["instructions"] == 35 and server.count > sent
    assert read(out / "accepted.jsonl")[: len(accepted)] == accepted


# ---------------------------------------------------------------- CLI and input

def test_cli_summary_bad_options_and_bad_seeds(tmp_path, make_server, seeds_en, capsys):
    server = make_server(reply=make_reply([s[0] for s in SEEDS_EN], "en"))
    base = ["generate", "--seeds", str(seeds_en), "--base-url", server.url, "--model", "test-model", "--no-progress"]
    code, stdout, stderr = run_main(capsys, *base, "--out", str(tmp_path / "run"), "--num-instructions", "6",
                                    "--mode", "alpaca", "--alpaca-tasks-per-request", "5")
    assert code == 0, stderr
    assert stdout.startswith("generate: 6 instructions")
    assert "instances_with_empty_input" in stdout and "avg_instruction_length" in stdout and "acceptance" in stdout

    for option, value, message in [("--num-instructions", "0", "--num-instructions: must be at least 1"),
                                   ("--no-rule", "rogue", "--no-rule: unknown rule"),
                                   ("--rouge-threshold", "2", "--rouge-threshold: must be within [0, 1]")]:
        code, _, stderr = run_main(capsys, *base, "--out", str(tmp_path / "x"), option, value)
        assert code == 2 and message in stderr and "Traceback" not in stderr, stderr

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "Name a color.", "instances": [{"input": "", "output": "red"}]}\n{"instruction": \n')
    code, _, stderr = run_main(capsys, "generate", "--seeds", str(bad), "--out", str(tmp_path / "y"),
                               "--base-url", server.url, "--model", "test-model")
    assert code == 2 and f"{bad}:2:" in stderr

    # resuming with other settings is refused, naming the setting; --fresh starts over
    code, _, stderr = run_main(capsys, *base, "--out", str(tmp_path / "run"), "--num-instructions", "6")
    assert code == 2 and "mode" in stderr and "--fresh" in stderr
    code, stdout, _ = run_main(capsys, *base, "--out", str(tmp_path / "run"), "--num-instructions", "6", "--fresh")
    assert code == 0 and read(tmp_path / "run" / "accepted.jsonl")[0]["source"] == "self-instruct"


def test_record_jsonl_seeds_and_disabled_rules(tmp_path, make_server):
    rows = [{"instruction": s[0], "input": s[1], "output": s[2]} for s in SEEDS_EN]
    seeds = tmp_path / "alpaca_rows.jsonl"
    seeds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    server = make_server(reply=make_reply([s[0] for s in SEEDS_EN], "en"))
    config = GenerateConfig(seeds=[str(seeds)], num_instructions=15, no_rule=["rouge"])
    summary = generate(config, llm_config(server), tmp_path / "run", progress=False)
    _, rejected, pool = check_run(tmp_path / "run", summary, 15, "en", "self-instruct")
    assert reasons(rejected)["rouge"] == 0
    assert all(row["rouge_max"] is None for row in pool)


def test_a_model_that_does_not_write_the_language_stops_early_and_says_why(tmp_path, make_server, seeds_zh):
    """generate --lang zh on a model answering in English reached 1 of 10 instructions in 12 minutes,
    heading for two hours: now it stops once most instructions fail the language rule, and says why."""
    server = make_server(reply=make_reply([s[0] for s in SEEDS_EN], "en"))  # English, whatever is asked
    out = tmp_path / "run"
    proc = cli("generate", "--seeds", str(seeds_zh), "--lang", "zh", "--num-instructions", "50", "--model",
               "test-model", "--base-url", server.url, "--no-progress", "--round-size", "4",
               "--out", str(out), "--json", home=tmp_path)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["stalled"] and summary["instructions"] < 50
    assert "not in 'zh'" in summary["stop_reason"] and "not in 'zh'" in stderr
    flt = summary["instruction_filter"]
    assert 30 <= flt["parsed"] < 80 and flt["rejected_language"] >= 0.8 * flt["parsed"]


def test_zh_with_the_embedded_model_is_warned_up_front():
    from sftdata.generate import language_warning

    assert "cannot write Chinese" in language_warning("zh", LLMConfig())
    assert language_warning("en", LLMConfig()) is None
    assert language_warning("zh", LLMConfig(base_urls=["http://x/v1"], model="m")) is None
    code = subprocess.run([sys.executable, "-c", "from sftdata.cli import main; main()", "generate", "--help"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    examples = code.stdout.split("Examples:")[1]
    assert all("--base-url" in line or "\\" in line for line in examples.splitlines() if "--lang zh" in line)


def test_ctrl_c_mid_request_says_stopping_and_exits_130_within_5_s(tmp_path, make_server, seeds_en):
    """Ctrl-C took 60-110 s and printed nothing meanwhile: now "stopping..." at once, the requests in
    flight cancelled, exit 130 within 5 s, and the same command resumes."""
    seeds = [s[0] for s in SEEDS_EN]
    slow = make_server(reply=make_reply(seeds, "en"), latency=30)
    out = tmp_path / "run"
    args = ["generate", "--seeds", str(seeds_en), "--num-instructions", "6", "--instances-per-task", "2",
            "--model", "test-model", "--no-progress", "--round-size", "2", "--out", str(out)]
    proc = cli(*args, "--base-url", slow.url, home=tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline and slow.count < 1:
        time.sleep(0.05)
    assert slow.count >= 1, "no request reached the server"
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == 130 and took < 5, (proc.returncode, took, stderr)
    assert "stopping..." in stderr and "Traceback" not in stderr, stderr
    assert stderr.index("stopping...") < stderr.index("interrupted")
    slow.latency = 0  # the same endpoint, answering at once now: the run resumes
    proc = cli(*args, "--base-url", slow.url, home=tmp_path)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert sum(1 for row in read(out / "instructions.jsonl") if row["instances"]) == 6


def test_the_progress_bar_moves_while_requests_are_out(tmp_path, make_server, seeds_en):
    """The bar sat at "0rec [00:00, ?rec/s]" for minutes: it now redraws every second with requests in
    flight, answers and tokens as they arrive, and an ETA once a task is done."""
    import re

    seeds = [s[0] for s in SEEDS_EN]
    server = make_server(reply=make_reply(seeds, "en"), latency=1.5)
    proc = cli("generate", "--seeds", str(seeds_en), "--num-instructions", "4", "--instances-per-task", "2",
               "--model", "test-model", "--base-url", server.url, "--round-size", "2", "--out", str(tmp_path / "r"),
               home=tmp_path)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    frames = re.split(r"[\r\n]", stderr)
    assert any(re.search(r" 0/4 \[.*in flight", f) for f in frames), stderr[-2000:]
    assert any(re.search(r" 0/4 \[.*req=[1-9]\d*/\d+.*tok=[1-9]", f) for f in frames), stderr[-2000:]
    assert any(re.search(r" [1-3]/4 \[\d\d:\d\d<\d\d:\d\d", f) for f in frames), stderr[-2000:]


@pytest.mark.parametrize("reasoning", ["strip", "keep"])
def test_a_reasoning_models_thinking_is_never_a_task(tmp_path, make_server, seeds_en, reasoning):
    """A QwQ / R1-style reply (a <think> block before the answer): the tasks come from the answer only;
    with llm.reasoning keep the thinking is stored in each record's meta, with strip it is gone."""
    answer = make_reply([s[0] for s in SEEDS_EN], "en")
    server = make_server(reply=lambda body, n: "<think>Plan: five varied tasks.\nInstruction: not a task</think>\n\n"
                         + answer(body, n))
    config = GenerateConfig(seeds=[str(seeds_en)], num_instructions=10, mode="alpaca", alpaca_tasks_per_request=5,
                            lang="en")
    generate(config, llm_config(server, reasoning=reasoning), tmp_path / "run", progress=False)
    accepted = read(tmp_path / "run" / "accepted.jsonl")
    assert len(accepted) == 10 and not any("not a task" in row["instruction"] for row in accepted)
    kept = {row.get("meta", {}).get("reasoning") for row in accepted}
    assert kept == ({"Plan: five varied tasks.\nInstruction: not a task"} if reasoning == "keep" else {None})
