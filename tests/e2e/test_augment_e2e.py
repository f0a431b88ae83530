"""``sftdata augment`` with the embedded SmolLM2-135M model: Evol-Instruct, paraphrase and a rule op, offline.

A 135M model follows the rewriting prompts loosely, so this checks the mechanics, not the quality:
every proposal is accounted for (kept, eliminated with a reason, failed or skipped), new records
carry their lineage, and a rerun of the same command is answered from the cache and changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import run_cli

from sftdata.core.paths import seeds_dir
from sftdata.core.records import read_records

pytestmark = pytest.mark.slow
OPS = ("constraints", "paraphrase", "rule:template")




def pick_seeds(path: Path) -> Path:
    """Two short English seed tasks and one Chinese one (one instance each)."""
    rows = []
    for lang, count in (("en", 2), ("zh", 1)):
        tasks = [json.loads(line) for line in (seeds_dir() / f"{lang}.jsonl").read_text(encoding="utf-8").splitlines()]
        tasks = sorted((t for t in tasks if not t["instances"][0]["input"]), key=lambda t: len(t["instruction"]))
        for task in tasks[:count]:
            rows.append({**task, "instances": task["instances"][:1], "lang": lang})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_augment_with_the_embedded_model(tmp_path: Path, capsys) -> None:
    source = pick_seeds(tmp_path / "seeds.jsonl")
    inputs = {r.id: r for r in read_records(source)}
    out = tmp_path / "aug"
    args = ["augment", str(source), "--out", str(out), "--ops", ",".join(OPS), "--max-tokens", "40",
            "--rewrite-max-tokens", "64", "--json", "--no-progress"]
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["llm"]["backend"] == "local" and summary["parents"] == 3
    for op in OPS:
        counts = summary["ops"][op]
        assert counts["proposed"] == 3
        assert counts["proposed"] == counts["kept"] + counts["failed"] + counts["skipped"] + \
            sum(counts["eliminated"].values()), counts
    # rewrites: 3 per LLM op; then at most an equality check (and an answer for evolutions) per rewrite
    assert 6 <= summary["llm"]["sent"] <= 6 + 3 * 2 + 3
    accepted = [json.loads(line) for line in (out / "accepted.jsonl").read_text(encoding="utf-8").splitlines()]
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(accepted) == summary["accepted"] and len(rejected) == summary["rejected"]
    assert len(accepted) + len(rejected) + summary["failed"] + summary["skipped"] == 9
    for rec in accepted:
        assert rec["parent_id"] in inputs and rec["instruction"].strip()
        assert rec["source"] in ("evol:constraints", "paraphrase", "rule:template")
        if rec["source"] != "evol:constraints":  # meaning kept: the parent's output stays
            assert rec["output"] == inputs[rec["parent_id"]].output
    for row in rejected:
        assert row["stage"] == "augment" and row["reason"] and row["record"]["parent_id"] in inputs
    stats = json.loads((out / "stats.json").read_text())
    assert stats["finished"] is True and stats["ops"] == summary["ops"]

    # the same command again: resumed from the finished checkpoint, nothing sent, nothing changed
    before = {name: (out / name).read_bytes() for name in ("accepted.jsonl", "rejected.jsonl", "requests.jsonl")}
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    assert {name: (out / name).read_bytes() for name in before} == before
