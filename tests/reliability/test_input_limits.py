"""Inputs that used to cost memory, time or a crash (issue 22, points 5, 6 and the "also seen" list):
YAML alias bombs, file names that are not UTF-8, a disk that fills up, identifiers in replies, and
ROUGE-L on huge instructions."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import time

from helpers_rel import ROOT, cli_command, cli_env, generate_args, generate_model, rows, run_cli, run_main


def _bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nname: *a{levels - 1}\n"


def test_a_yaml_alias_bomb_is_refused_quickly_with_a_short_message(tmp_path):
    config = tmp_path / "bomb.yaml"
    config.write_text(_bomb(6), encoding="utf-8")  # 9^6 = 531,441 strings from 400 bytes
    started = time.monotonic()
    result = run_main("run", str(config), "--dry-run", home=tmp_path)
    assert result.returncode == 2, result.stderr[:300]
    assert len(result.stderr) < 400 and f"{config}:" in result.stderr and "aliases" in result.stderr
    assert time.monotonic() - started < 10
    recursive = tmp_path / "loop.yaml"
    recursive.write_text("name: &x [1, *x]\n", encoding="utf-8")
    result = run_main("run", str(recursive), "--dry-run", home=tmp_path)
    assert result.returncode == 2 and "aliases" in result.stderr, result.stderr[:300]


def test_a_seed_file_name_that_is_not_utf8_is_stored_losslessly(tmp_path, make_server, seeds):
    server = make_server(reply=generate_model())
    odd = tmp_path / os.fsdecode(b"seeds-\xff\xfe.jsonl")
    odd.write_bytes(seeds.read_bytes())
    out = tmp_path / "run"
    result = run_cli(*generate_args(odd, out, server.url, num=2), home=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert os.fsencode(config["generate"]["seeds"][0]) == os.fsencode(str(odd))  # the very bytes
    assert not list(out.glob("*.tmp"))
    again = run_cli(*generate_args(odd, out, server.url, num=2), home=tmp_path)  # resumes: same settings
    assert again.returncode == 0, again.stderr[-2000:]


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (48 * 1024, resource.RLIM_INFINITY))


def test_a_full_disk_is_an_environment_error_and_the_run_resumes(tmp_path, make_server, seeds):
    """A file size limit (RLIMIT_FSIZE) stands in for a disk that fills up: writes fail mid-run."""
    server = make_server(reply=generate_model())
    out = tmp_path / "run"
    args = generate_args(seeds, out, server.url, "--round-size", "2", num=40)
    full = subprocess.run(cli_command(*args), capture_output=True, text=True, env=cli_env(tmp_path), cwd=ROOT,
                          timeout=120, preexec_fn=_limit_file_size)
    assert full.returncode == 2, full.stderr[-2000:]
    assert "no room to write" in full.stderr and "re-run the same command" in full.stderr
    assert "internal error" not in full.stderr and "Traceback" not in full.stderr
    assert not list(out.glob("*.tmp"))
    resumed = run_cli(*args, home=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    ids = [r["id"] for r in rows(out / "accepted.jsonl")]
    assert ids and len(ids) == len(set(ids))


def test_the_parser_leaves_identifiers_alone():
    from sftdata.generate.parse import parse_instructions

    reply = ("1. Implement __init__ and __eq__ for a Point class in Python.\n"
             "2. Explain what f(*args, **kwargs) receives when called.\n"
             "3. **Write** a poem about __the sea__.")
    items = parse_instructions(reply).items
    assert items[0] == "Implement __init__ and __eq__ for a Point class in Python."
    assert items[1] == "Explain what f(*args, **kwargs) receives when called."
    assert items[2] == "Write a poem about the sea."


def test_rouge_on_huge_instructions_is_bounded(tmp_path):
    words = [f"w{i % 5000}" for i in range(100_000)]  # ~600 KB each, the length rule off
    data = tmp_path / "huge.jsonl"
    data.write_text("".join(json.dumps({"instruction": " ".join(words[k:] + words[:k]), "output": "x"}) + "\n"
                            for k in (0, 7)), encoding="utf-8")
    started = time.monotonic()
    result = run_main("filter", str(data), "--out", str(tmp_path / "out"), "--no-rule", "length,format,language",
                      home=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert time.monotonic() - started < 15
