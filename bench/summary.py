"""The ratio table ``make bench`` ends with: each bench appends one line per comparison with
:func:`record`; ``python bench/summary.py`` prints them all against their targets.

Lines go to ``$SFTDATA_BENCH_SUMMARY`` (a JSON-lines file the Makefile empties first); outside
``make bench`` nothing is written.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ENV = "SFTDATA_BENCH_SUMMARY"


def record(bench: str, peer: str, metric: str, ratio: float, target: float, note: str = "") -> None:
    """One comparison: ``ratio`` of sftdata over ``peer`` on ``metric`` (higher is better), and its target."""
    path = os.environ.get(ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"bench": bench, "peer": peer, "metric": metric, "ratio": round(ratio, 3),
                             "target": target, "note": note}) + "\n")


def table(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    head = f"{'bench':16s} {'peer':44s} {'metric':22s} {'ratio':>7s} {'target':>7s}  met"
    lines = [head, "-" * len(head)]
    for row in rows:
        met = "yes" if row["ratio"] >= row["target"] else "NO"
        lines.append(f"{row['bench']:16s} {row['peer'][:44]:44s} {row['metric'][:22]:22s} "
                     f"{row['ratio']:6.2f}x {row['target']:6.2f}x  {met}" + (f"  ({row['note']})" if row["note"] else ""))
    missed = sum(1 for row in rows if row["ratio"] < row["target"])
    lines.append(f"{len(rows)} comparisons, {len(rows) - missed} meet their target, {missed} miss it")
    return "\n".join(lines)


if __name__ == "__main__":
    summary = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get(ENV, "bench-summary.jsonl"))
    print(table(summary) if summary.is_file() else f"no bench results in {summary}")
