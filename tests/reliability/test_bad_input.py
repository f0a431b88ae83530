"""Bad input: every file of the corpus under ``tests/data/bad/``, through every command that reads it.

Each gives exit 2 and one line naming the file and line (or the option), no traceback, and no output:
a file whose last line is bad never leaves its valid lines half-written anywhere. Generated cases add
a 10 MB line, 1 GB streamed through a FIFO (never loaded whole), missing paths, unwritable output
directories and bad option values. CRLF line ends are valid input (see RELIABILITY.md).
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest
from helpers_rel import ROOT, cli_command, cli_env, free_port, rows, run_main, run_measured

from sftdata.core.records import read_records

BAD = ROOT / "tests" / "data" / "bad"
GOOD = ROOT / "tests" / "data" / "good"
DOWN = f"http://127.0.0.1:{free_port()}/v1"  # never reached: input is checked before any request

# corpus file -> (line named in the message or None for the whole file, a fragment of the message)
EXPECTED_DATA = {
    "messages_content_not_string.jsonl": (1, "each turn needs a string 'content'"),
    "prompt_completion_wrong_type.jsonl": (2, "field 'completion' must be a string, got int"),
    "records_bad_is_classification.jsonl": (1, "field 'is_classification' must be true, false or null"),
    "records_bad_meta.jsonl": (1, "field 'meta' must be an object"),
    "records_blank_lines.jsonl": (None, "file is empty"),
    "records_bom.jsonl": (1, "byte-order mark (BOM)"),
    "records_control_character.jsonl": (2, "invalid JSON: Invalid control character at column 24"),
    "records_deep_nesting.jsonl": (2, "invalid JSON: nested too deeply"),
    "records_empty.jsonl": (None, "file is empty"),
    "records_empty_instruction.jsonl": (2, "field 'instruction' is empty"),
    "records_huge_integer.jsonl": (2, "a number longer than 4300 digits"),
    "records_infinity.jsonl": (2, "-Infinity is not valid JSON"),
    "records_input_null_object.jsonl": (2, "field 'input' must be a string, got dict"),
    "records_instruction_list.jsonl": (1, "field 'instruction' must be a string, got list"),
    "records_invalid_json.jsonl": (3, "invalid JSON: Expecting value at column 1"),
    "records_invalid_utf8.jsonl": (2, "invalid UTF-8 at byte 20"),
    "records_json_array.jsonl": (1, "this looks like a JSON array"),
    "records_json_array_one_line.jsonl": (1, "a JSON array, expected one JSON object per line"),
    "records_latin1.jsonl": (2, "invalid UTF-8 at byte 18"),
    "records_lone_surrogate.jsonl": (2, "lone surrogate"),
    "records_missing_instruction.jsonl": (2, "missing field 'instruction'"),
    "records_nan.jsonl": (2, "NaN is not valid JSON"),
    "records_output_not_string.jsonl": (3, "field 'output' must be a string, got int"),
    "records_plain_text.jsonl": (1, "invalid JSON: Expecting value at column 1"),
    "records_scalar_line.jsonl": (2, "expected a JSON object, got int"),
    "records_trailing_garbage.jsonl": (2, "invalid JSON: Extra data at column 67"),
    "records_truncated_last_line.jsonl": (3, "invalid JSON: Unterminated string starting at column 17"),
    "records_two_objects_one_line.jsonl": (2, "invalid JSON: Extra data at column 41"),
    "records_utf16.jsonl": (1, "file is UTF-16"),
    "seeds_empty_instances.jsonl": (1, "field 'instances' must be a non-empty list"),
    "seeds_instance_missing_output.jsonl": (2, "missing field 'output'"),
    "seeds_instance_not_object.jsonl": (1, "each instance must be an object"),
    "seeds_instances_not_list.jsonl": (1, "field 'instances' must be a non-empty list"),
    "seeds_instances_null.jsonl": (1, "field 'instances' must be a non-empty list"),
    "seeds_is_classification_number.jsonl": (1, "field 'is_classification' must be true, false or null, got 2"),
    "sharegpt_no_human_turn.jsonl": (1, "no 'human' turn in conversation"),
    "sharegpt_turns_not_list.jsonl": (1, "conversation must be a non-empty list of turns"),
}

# config file -> ("line", N) or ("option", key) named first in the message, and a fragment of the message
EXPECTED_CONFIG = {
    "config_augment_threshold_negative.yaml": ("option", "augment.rouge_threshold", "must be within (0, 1]"),
    "config_bad_enum.yaml": ("option", "generate.mode", "must be one of self-instruct, alpaca"),
    "config_bad_toml.toml": ("line", 2, "invalid TOML"),
    "config_concurrency_zero.yaml": ("option", "llm.concurrency", "must be at least 1"),
    "config_duplicate_section.yaml": ("line", 5, "duplicate key 'generate' (first given at line 1)"),
    "config_empty.yaml": ("line", None, "config file is empty"),
    "config_enabled_not_bool.yaml": ("option", "generate.enabled", "expected true or false"),
    "config_export_bad_format.yaml": ("option", "export.formats", "unknown format 'parquet2'"),
    "config_export_bad_split.yaml": ("option", "export.split", "expected 3 ratios"),
    "config_invalid_utf8.yaml": ("line", 3, "invalid UTF-8"),
    "config_invalid_yaml.yaml": ("line", 3, "invalid YAML"),
    "config_llm_unknown_key.yaml": ("option", "llm.api_kye", "unknown key"),
    "config_negative_count.yaml": ("option", "generate.num_instructions", "must be at least 1"),
    "config_not_mapping.yaml": ("line", 1, "a config must be a mapping of sections"),
    "config_section_not_mapping.yaml": ("option", "filter", "expected a mapping of settings"),
    "config_seed_float.yaml": ("option", "seed", "expected an integer"),
    "config_tab_indent.yaml": ("line", 2, "invalid YAML"),
    "config_threshold_out_of_range.yaml": ("option", "filter.rouge_threshold", "must be within [0, 1]"),
    "config_timeout_negative.yaml": ("option", "llm.timeout", "must be positive"),
    "config_unknown_key.yaml": ("option", "generate.num_instrucions", "unknown key"),
    "config_unknown_section.yaml": ("option", "generat", "unknown key"),
    "config_wrong_type.yaml": ("option", "generate.num_instructions", "expected an integer, got 'many'"),
    "config_zero_count.yaml": ("option", "generate.instances_per_task", "must be at least 1"),
}


def commands(path: Path, out: Path) -> dict[str, list[str]]:
    """Every command that reads records or seeds, reading ``path`` into ``out``."""
    llm = ["--base-url", DOWN, "--model", "test-model"]
    return {
        "filter": ["filter", str(path), "--out", str(out), "--no-progress"],
        "clean": ["clean", str(path), "--out", str(out)],
        "export": ["export", str(path), "--out", str(out)],
        "augment": ["augment", str(path), "--out", str(out), "--ops", "deepen,rule:template", "--no-progress", *llm],
        "generate": ["generate", "--seeds", str(path), "--out", str(out), "--no-progress", *llm],
    }


def single_error(stderr: str) -> str:
    """The one line a bad input prints; no traceback, nothing else."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def test_the_corpus_is_large_and_every_file_has_an_expectation():
    data = {p.name for p in BAD.glob("*.jsonl")}
    configs = {p.name for p in BAD.iterdir() if p.name.startswith("config_")}
    assert data == set(EXPECTED_DATA) and configs == set(EXPECTED_CONFIG)
    assert len(data) + len(configs) >= 25


@pytest.mark.parametrize("name", sorted(EXPECTED_DATA))
def test_bad_records_and_seeds_exit_2_naming_file_and_line(tmp_path, name):
    path = BAD / name
    line, fragment = EXPECTED_DATA[name]
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    for command, args in commands(path, tmp_path / "out").items():
        result = run_main(*args, home=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        message = single_error(result.stderr)
        assert message.startswith(f"error: {where}") and fragment in message, (command, message)
        assert not (tmp_path / "out").exists(), f"{command} wrote output for a bad input"


@pytest.mark.parametrize("name", sorted(EXPECTED_CONFIG))
def test_bad_configs_exit_2_naming_the_key_or_line(tmp_path, name):
    path = BAD / name
    kind, where, fragment = EXPECTED_CONFIG[name]
    result = run_main("run", str(path), "--dry-run", "--out", str(tmp_path / "run"), home=tmp_path)
    assert result.returncode == 2, result.stderr
    message = single_error(result.stderr)
    if kind == "option":
        prefix = f"error: {where}: "
    else:
        prefix = f"error: {path}:{where}: " if where is not None else f"error: {path}: "
    assert message.startswith(prefix) and fragment in message, message
    assert not (tmp_path / "run").exists()


def test_a_bad_config_stops_a_real_run_before_anything_is_written(tmp_path):
    result = run_main("run", str(BAD / "config_export_bad_split.yaml"), "--out", str(tmp_path / "run"),
                      home=tmp_path)
    assert result.returncode == 2 and "export.split" in single_error(result.stderr)
    assert not (tmp_path / "run").exists()


def test_a_config_naming_a_missing_seed_file_fails_with_its_path(tmp_path):
    config = tmp_path / "missing-seeds.yaml"
    config.write_text("seeds: nowhere.jsonl\ngenerate:\n  num_instructions: 2\n"
                      f"llm:\n  base_url: {DOWN}\n  model: test-model\n" +
                      "".join(f"{s}: {{enabled: false}}\n" for s in
                              ("filter", "clean", "augment", "export", "finetune", "eval", "report")))
    result = run_main("run", str(config), "--out", str(tmp_path / "run"), "--no-progress", home=tmp_path)
    assert result.returncode == 2
    message = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    # the key, the path and the config file it was read beside (issue 18: paths are config-relative)
    assert message == [f"error: seeds: no such file or directory: {tmp_path / 'nowhere.jsonl'} (a relative path "
                       f"in {config} is read from its directory, {tmp_path})"], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "generate" / "accepted.jsonl").exists()


def test_mixed_file_with_a_bad_last_line_writes_nothing(tmp_path):
    """Valid lines first, a bad one last: read in full before anything is written (real processes)."""
    good = '{"instruction": "Name a primary color for me.", "input": "", "output": "Blue."}\n'
    path = tmp_path / "mixed.jsonl"
    path.write_text(good * 500 + '{"instruction": "Name a fruit.", "output": \n', encoding="utf-8")
    for command, args in commands(path, tmp_path / "out").items():
        proc = subprocess.run(cli_command(*args), capture_output=True, text=True, env=cli_env(tmp_path), cwd=ROOT)
        assert proc.returncode == 2, (command, proc.stderr)
        assert single_error(proc.stderr).startswith(f"error: {path}:501: invalid JSON")
        assert not (tmp_path / "out").exists(), f"{command} wrote part of a bad file"


def test_a_10_mb_line_is_refused_with_its_line_number(tmp_path):
    path = tmp_path / "long.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('{"instruction": "Name a primary color.", "input": "", "output": "Blue."}\n')
        fh.write('{"instruction": "' + "word " * (2 * 1024 * 1024) + '", "output": "x"}\n')
    assert path.stat().st_size > 10 * 1024 * 1024
    for command, args in commands(path, tmp_path / "out").items():
        result = run_main(*args, home=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert single_error(result.stderr) == f"error: {path}:2: line longer than 8 MB"
        assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- 1 GB, streamed

GIB = 1024 ** 3


def feed_fifo(path: Path, chunks, total: int) -> threading.Thread:
    """Write ``total`` bytes from the repeating ``chunks`` iterator into FIFO ``path`` from a thread;
    stops quietly when the reader goes away (it is expected to stop early)."""
    def writer() -> None:
        fd = os.open(path, os.O_WRONLY)
        written = 0
        try:
            for chunk in chunks:
                if written >= total:
                    break
                os.write(fd, chunk[: total - written])
                written += len(chunk)
        except BrokenPipeError:
            pass
        finally:
            os.close(fd)
            thread.written = written  # type: ignore[attr-defined]

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    return thread


def repeat(chunk: bytes):
    while True:
        yield chunk


def test_a_1_gb_line_without_newline_fails_at_8_mb_without_loading_it(tmp_path):
    fifo = tmp_path / "one-line.jsonl"
    os.mkfifo(fifo)
    feeder = feed_fifo(fifo, repeat(b'{"instruction": "' + b"x" * (1 << 20)), GIB)
    run = run_measured(cli_command("filter", str(fifo), "--out", str(tmp_path / "out"), "--no-progress"), tmp_path)
    feeder.join(10)
    assert run.returncode == 2 and single_error(run.stderr) == f"error: {fifo}:1: line longer than 8 MB"
    assert feeder.written < 64 * 1024 * 1024, "the reader went on reading"  # type: ignore[attr-defined]
    assert run.seconds < 30 and run.peak_rss_mb < 400, run
    assert not (tmp_path / "out").exists()
    print(f"\n1 GB single line: refused after {feeder.written >> 20} MB read, {run.seconds:.1f} s, "  # type: ignore[attr-defined]
          f"peak RSS {run.peak_rss_mb:.0f} MB")


def test_a_1_gb_stream_with_a_bad_line_fails_at_that_line(tmp_path):
    fifo = tmp_path / "stream.jsonl"
    os.mkfifo(fifo)
    good = b'{"instruction": "Name a primary color.", "input": "", "output": "Blue."}\n'

    def chunks():
        yield good * 1000
        yield b'{"instruction": "broken\n'
        yield from repeat(good * 10_000)

    feeder = feed_fifo(fifo, chunks(), GIB)
    run = run_measured(cli_command("clean", str(fifo), "--out", str(tmp_path / "out")), tmp_path)
    assert run.returncode == 2 and single_error(run.stderr).startswith(f"error: {fifo}:1001: invalid JSON"), run
    assert run.seconds < 30 and run.peak_rss_mb < 400, run
    feeder.join(10)
    assert feeder.written < GIB  # type: ignore[attr-defined]
    assert not (tmp_path / "out").exists()


def test_the_jsonl_reader_streams_1_gb_in_bounded_memory(tmp_path):
    """1 GB of valid records through ``read_records`` in a child process: it never holds the file."""
    fifo = tmp_path / "valid.jsonl"
    os.mkfifo(fifo)
    line = b'{"instruction": "Summarize the text.", "input": "' + b"lorem ipsum " * 8700 + b'", "output": "ok"}\n'
    feeder = feed_fifo(fifo, repeat(line * 8), GIB - GIB % len(line))
    script = ("import sys; from sftdata.core.records import read_records\n"
              "n = sum(len(r.input) for r in read_records(sys.argv[1]))\n"
              "assert n >= 0.99 * 2 ** 30, n")
    run = run_measured([cli_command()[0], "-c", script, str(fifo)], tmp_path)
    feeder.join(10)
    assert run.returncode == 0, run.stderr
    assert feeder.written >= 0.99 * GIB  # type: ignore[attr-defined]
    assert run.peak_rss_mb < 100, run  # a 1 GB file held whole would need several GB
    print(f"\n1 GB streamed through read_records: {run.seconds:.1f} s, peak RSS {run.peak_rss_mb:.0f} MB")


# ---------------------------------------------------------------- CRLF, missing paths, unwritable output

def test_crlf_line_ends_read_exactly_like_lf(tmp_path):
    crlf = GOOD / "crlf.jsonl"
    assert b"\r\n" in crlf.read_bytes()
    lf = tmp_path / "lf.jsonl"
    lf.write_bytes(crlf.read_bytes().replace(b"\r\n", b"\n"))
    assert list(read_records(crlf)) == list(read_records(lf))
    for command in ("filter", "clean", "export"):
        outs = []
        for path in (crlf, lf):
            out = tmp_path / f"{command}-{path.stem}"
            result = run_main(*commands(path, out)[command], home=tmp_path)
            assert result.returncode == 0, result.stderr
            outs.append(out)
        for produced in sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*.jsonl")):
            assert rows(outs[0] / produced) == rows(outs[1] / produced), (command, produced)


def test_missing_paths_exit_2_naming_them(tmp_path):
    missing = tmp_path / "no-such-file.jsonl"
    for command, args in commands(missing, tmp_path / "out").items():
        result = run_main(*args, home=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert single_error(result.stderr) == f"error: {missing}: no such file", command
    result = run_main("run", str(tmp_path / "no-such-config.yaml"), "--dry-run", home=tmp_path)
    assert result.returncode == 2
    assert single_error(result.stderr) == f"error: {tmp_path / 'no-such-config.yaml'}: no such config file"


def unwritable_dirs(tmp_path: Path) -> list[Path]:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    dirs = [blocker / "out", Path("/proc/sftdata-cannot-create-this")]
    if os.geteuid() != 0:  # root writes into read-only directories anyway
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        dirs.append(locked / "out")
    return dirs


def test_unwritable_output_directory_exits_2_naming_out(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_bytes((GOOD / "crlf.jsonl").read_bytes())
    for out in unwritable_dirs(tmp_path):
        for command, args in commands(good, out).items():
            result = run_main(*args, home=tmp_path)
            assert result.returncode == 2, (command, out, result.stderr)
            message = single_error(result.stderr)
            assert message.startswith("error: --out: cannot ") and str(out) in message, (command, message)


BAD_OPTIONS = [
    (["filter", "{good}", "--out", "{out}", "--rouge-threshold", "1.5"], "--rouge-threshold"),
    (["filter", "{good}", "--out", "{out}", "--rouge-threshold", "-0.1"], "--rouge-threshold"),
    (["filter", "{good}", "--out", "{out}", "--min-words", "-1"], "--min-words"),
    (["generate", "--seeds", "{good}", "--out", "{out}", "--num-instructions", "0", *("--model", "m")],
     "--num-instructions"),
    (["generate", "--seeds", "{good}", "--out", "{out}", "--num-instructions", "-5"], "--num-instructions"),
    (["generate", "--seeds", "{good}", "--out", "{out}", "--rouge-threshold", "2"], "--rouge-threshold"),
    (["generate", "--seeds", "{good}", "--out", "{out}", "--base-url", DOWN, "--model", "m", "--concurrency", "0"],
     "--concurrency"),
    (["generate", "--seeds", "{good}", "--out", "{out}", "--base-url", DOWN, "--model", "m", "--timeout", "0"],
     "--timeout"),
    (["generate", "--seeds", "{good}", "--out", "{out}", "--base-url", DOWN], "--model"),
    (["augment", "{good}", "--out", "{out}", "--ops", "deepen", "--rounds", "0"], "--rounds"),
    (["augment", "{good}", "--out", "{out}", "--ops", "deepen", "--rouge-threshold", "1.2"], "--rouge-threshold"),
    (["augment", "{good}", "--out", "{out}", "--ops", "evolve"], "--ops"),
    (["export", "{good}", "--out", "{out}", "--split", "0.5,0.6,0.1"], "--split"),
    (["export", "{good}", "--out", "{out}", "--format", "csv"], "--format"),
    (["clean", "{good}", "--out", "{out}", "--no-rule", "nonsense"], "--no-rule"),
]


@pytest.mark.parametrize("args,option", BAD_OPTIONS, ids=[f"{a[0]} {a[-2] if a[-1] != 'm' else a[-4]}"
                                                         for a, _ in BAD_OPTIONS])
def test_bad_option_values_exit_2_naming_the_option(tmp_path, args, option):
    good = tmp_path / "good.jsonl"
    good.write_bytes((GOOD / "crlf.jsonl").read_bytes())
    out = tmp_path / "out"
    result = run_main(*[a.format(good=good, out=out) for a in args], home=tmp_path)
    assert result.returncode == 2, result.stderr
    message = single_error(result.stderr)
    assert option in message, message
    assert not out.exists()
