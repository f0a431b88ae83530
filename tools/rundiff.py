"""Compare two run directories file by file, with timings and the runs' own paths masked.

Used to show that a refactor keeps behaviour (docs/architecture.md, issue 14): run the same config
on both trees, then

    python tools/rundiff.py RUN_A RUN_B [--root A_SRC B_SRC]

prints every file that differs once JSON keys holding timings (seconds, rates, memory peaks) are
masked, the run directories' names and paths are replaced by one placeholder, and PEFT's
``target_modules`` (written from a set, so in hash order) is sorted; then one count line.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

MEASURED = re.compile(r"(seconds|_s$|time|elapsed|_at$|timestamp|per_s$|rate$|created|date|duration|"
                      r"latency|wall|cpu|peak_memory|rss)", re.I)
SET_ORDERED = {"target_modules"}


def _masked(obj: Any, key: str = "") -> Any:
    if isinstance(obj, dict):
        return {k: "<measured>" if MEASURED.search(k) and not isinstance(v, list) else _masked(v, k)
                for k, v in obj.items()}
    if isinstance(obj, list):
        items = [_masked(v) for v in obj]
        return sorted(items, key=str) if key in SET_ORDERED else items
    return obj


def _read(path: Path, names: dict[str, str]) -> Any:
    text = path.read_text(encoding="utf-8")
    for name, placeholder in sorted(names.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(name, placeholder)
    if path.suffix == ".json":
        return _masked(json.loads(text))
    if path.suffix == ".jsonl":
        return [_masked(json.loads(line)) for line in text.splitlines() if line.strip()]
    text = re.sub(r'"(seconds|peak_memory_mb|rss_mb)": [\d.]+', r'"\1": <measured>', text)
    return re.sub(r"\d+(\.\d+)? ?(s|ms|min|MB|GB)\b|\| seconds \| [\d.]+ \|", "<measured>", text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--root", nargs=2, type=Path, default=(), metavar=("A_SRC", "B_SRC"),
                        help="source trees the runs were made from (their paths appear in configs)")
    args = parser.parse_args()
    a, b = args.run_a.resolve(), args.run_b.resolve()
    names = {str(a): "<RUN>", str(b): "<RUN>", a.name: "<RUN>", b.name: "<RUN>"}
    names.update({str(root.resolve()): "<SRC>" for root in args.root})
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    extra = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and not (a / p.relative_to(b)).exists())
    identical = masked_equal = 0
    for rel in files:
        if not (b / rel).exists():
            print(f"only in {a}: {rel}")
        elif (a / rel).read_bytes() == (b / rel).read_bytes():
            identical += 1
        else:
            try:
                equal = _read(a / rel, names) == _read(b / rel, names)
            except (UnicodeDecodeError, json.JSONDecodeError):
                equal = False
            masked_equal += equal
            print(f"{'same once masked' if equal else 'DIFFERS'}: {rel}")
    for rel in extra:
        print(f"only in {b}: {rel}")
    print(f"{len(files)} files: {identical} byte-identical, {masked_equal} equal once timings and run paths are "
          f"masked, {len(files) - identical - masked_equal} differ; {len(extra)} only in the second run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
