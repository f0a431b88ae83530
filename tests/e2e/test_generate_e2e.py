"""``sftdata generate`` with the embedded SmolLM2-135M-Instruct: offline, end to end, records filled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_generate_five_instructions_with_the_embedded_model(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p))
    out = tmp_path / "run"
    # The packaged English seeds. Short replies keep it within a few minutes on two cores; a 135M
    # model sampled as the original (0.7, top_p 0.5) mostly copies the tasks in its prompt, which the
    # filters reject (about 8% acceptance), while a hotter sampling yields about 25%.
    args = ["generate", "--out", str(out), "--num-instructions", "5", "--max-tokens", "128",
            "--instructions-per-request", "5", "--instances-per-task", "2", "--temperature", "1.0",
            "--top-p", "0.95", "--no-progress", "--json"]
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "from sftdata.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=1500)
    seconds = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    print(f"\nembedded model: {summary['instructions']} instructions, {summary['records']} records in {seconds:.0f} s; "
          f"instruction acceptance {summary['instruction_filter']['acceptance']:.0%}, "
          f"requests {summary['llm']['sent']}")
    assert summary["llm"]["backend"] == "local" and summary["llm"]["failed"] == 0
    assert summary["instructions"] == 5 and not summary["stalled"]
    records = [json.loads(line) for line in (out / "accepted.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == summary["records"] >= 5
    fields = {"id", "instruction", "input", "output", "lang", "is_classification", "source", "parent_id", "meta"}
    for record in records:
        assert set(record) == fields
        assert record["instruction"].strip() and record["output"].strip()
        assert record["lang"] == "en" and record["source"] == "self-instruct"
        assert record["meta"]["model"] == "SmolLM2-135M-Instruct"
        assert record["meta"]["request_keys"]["instructions"] and record["meta"]["request_keys"]["instances"]
        assert "rouge_max" in record["meta"] and record["meta"]["format"] in ("input_first", "output_first")
    pool = [json.loads(line) for line in (out / "instructions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sum(1 for row in pool if row["instances"]) == 5
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["finished"] and stats["table1"]["instructions"] == 5


@pytest.mark.slow
def test_ctrl_c_during_a_local_batch_exits_130_within_5_s(tmp_path):
    """The local engine generates a round's batch in a worker thread: Ctrl-C waited for the batch to
    end (60-110 s on the demo). It must print "stopping..." and exit 130 within 5 s."""
    import signal

    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p))
    out = tmp_path / "run"
    args = ["generate", "--out", str(out), "--num-instructions", "20", "--max-tokens", "256",
            "--round-size", "16", "--temperature", "1.0", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-c", "from sftdata.cli import main; main()", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    time.sleep(25)  # the model loads (seconds from the cache), then generates a 16-prompt, 256-token batch
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    took = time.monotonic() - sent
    assert proc.returncode == 130 and "stopping..." in stderr and "Traceback" not in stderr, stderr[-2000:]
    assert took < 5, f"{took:.1f} s from Ctrl-C to exit"
