"""Curated mutation testing: does the suite notice the bugs a real change could bring in?

Each mutation replaces one exact piece of source (it must occur exactly once: a mutation whose text
no longer exists fails loudly, so the list is kept in step with the code) in a scratch copy of the
tree, runs the focused tests that guard that code, and counts the mutation killed when they fail.
Survivors are listed: each one is a bug the suite would let through.

    python tools/mutants.py            # all mutations (make mutants)
    python tools/mutants.py -k export -k cache_key  # those whose name contains "export" or "cache_key"
    python tools/mutants.py --list

Exit status 1 when fewer than --min-killed (0.9) of the mutations run are killed, or a mutation is stale.
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("sftdata", "tests", "prompts", "seeds", "pyproject.toml")


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # relative to the repository root
    old: str
    new: str
    tests: tuple[str, ...]  # pytest arguments: files, node ids, -k expressions


# the tokenizer file's long hypothesis comparisons with rouge-score are left out: minutes on a shared machine
TOKENIZE = ("tests/unit/test_tokenize.py", "-k", "han or detectors or known or stemming or cjk or get_tokenizer")
ROUGE = ("tests/unit/test_rouge.py",)
RULES = ("tests/unit/test_rules.py",)
SPLITS = ("tests/unit/test_export.py", "-k", "split or stratum or process or seed or ratio or grouping")
CACHE_KEY = ("tests/integration/test_llm_cache_key.py",)
CLIENT = ("tests/integration/test_llm_client.py",)
MASKING = ("tests/unit/test_finetune_data.py",)
BATCHING = ("tests/unit/test_finetune_batching.py",)
FUSED = ("tests/unit/test_finetune_fused.py",)

MUTATIONS = (
    # ---------------------------------------------------------------- filter: tokenizer, ROUGE-L, rules
    Mutation("text.cjk: Han range ends at U+9FA5", "sftdata/text/cjk.py",
             r'"\u4e00-\u9fff"', r'"\u4e00-\u9fa5"', TOKENIZE),
    Mutation("text.cjk: no CJK extension A", "sftdata/text/cjk.py",
             r'"\u3400-\u4dbf"  # extension A', r'""  # extension A', TOKENIZE),
    Mutation("text.cjk: no CJK compatibility ideographs", "sftdata/text/cjk.py",
             r'"\uf900-\ufaff"  # compatibility', r'""  # compatibility', TOKENIZE),
    Mutation("text.cjk: no Han extensions B-H", "sftdata/text/cjk.py",
             r'"\U00020000-\U0002fa1f"  # extensions B-F', r'""  # extensions B-F', TOKENIZE),
    Mutation("filter.tokenize: stems 3-letter tokens", "sftdata/filter/tokenize.py",
             "if len(tok) > 3 else tok", "if len(tok) >= 3 else tok", TOKENIZE),
    Mutation("filter.tokenize: rouge tokens not lowercased", "sftdata/filter/tokenize.py",
             "tokens = _ROUGE_TOKEN.findall(text.lower())", "tokens = _ROUGE_TOKEN.findall(text)", TOKENIZE),
    Mutation("filter.rouge: F1 without the factor 2", "sftdata/filter/rouge.py",
             "return 2 * precision * recall / (precision + recall)",
             "return precision * recall / (precision + recall)", ROUGE),
    Mutation("filter.rouge: LCS forgets the left cell", "sftdata/filter/rouge.py",
             "max(prev[j + 1], cur[j])", "prev[j + 1]", ROUGE),
    Mutation("filter.rules: whitespace output is not empty", "sftdata/filter/rules.py",
             'config.enabled("empty_output") and not output:',
             'config.enabled("empty_output") and not record.output:', RULES),
    Mutation("filter.rules: full-width colon ending allowed", "sftdata/filter/rules.py",
             'value.endswith((":", "\\uff1a"))', 'value.endswith(":")', RULES),
    Mutation("filter.rules: minimum length inclusive", "sftdata/filter/rules.py",
             "if not low < count <= high:", "if not low <= count <= high:", RULES),
    Mutation("filter.rules: opening quote counts as punctuation", "sftdata/filter/rules.py",
             'unicodedata.category(first).startswith("P")) and not _opener(first):',
             'unicodedata.category(first).startswith("P")):', RULES),
    # ---------------------------------------------------------------- export splits
    Mutation("export.splits: order by hash() instead of sha256", "sftdata/export/splits.py",
             'hashlib.sha256(f"{seed}\\0{item[0]}".encode()).hexdigest()',
             'str(hash(f"{seed}\\0{item[0]}"))', SPLITS),
    Mutation("export.splits: stratification ignored", "sftdata/export/splits.py",
             "return _stratum(records, item[1]), digest", 'return "", digest', SPLITS),
    Mutation("export.splits: seed ignored", "sftdata/export/splits.py",
             'f"{seed}\\0{item[0]}"', 'f"{item[0]}"', SPLITS),
    Mutation("export.splits: grouping is case-sensitive", "sftdata/export/splits.py",
             'return " ".join(instruction.split()).casefold()', "return instruction", SPLITS),
    Mutation("export.splits: stratum vote ties by order", "sftdata/export/splits.py",
             "key=lambda kv: (-kv[1], repr(kv[0])))[0]", "key=lambda kv: -kv[1])[0]", SPLITS),
    # ---------------------------------------------------------------- LLM cache key and client
    Mutation("llm.cache_key: temperature ignored", "sftdata/llm/base.py",
             '"temperature": self.temperature, ', "", CACHE_KEY),
    Mutation("llm.cache_key: stop ignored", "sftdata/llm/base.py", '"stop": self.stop, ', "", CACHE_KEY),
    Mutation("llm.cache_key: top_p ignored", "sftdata/llm/base.py", '"top_p": self.top_p, ', "", CACHE_KEY),
    Mutation("llm.cache_key: tag included", "sftdata/llm/base.py",
             '"seed": self.seed,\n', '"seed": self.seed, "tag": self.tag,\n', CACHE_KEY),
    Mutation("llm.client: Retry-After cap removed", "sftdata/llm/openai_backend.py",
             "return min(self.max_retry_after, max(retry_after, 0.0))", "return max(retry_after, 0.0)",
             CLIENT + ("-k", "retry")),
    Mutation("llm.client: Retry-After ignored", "sftdata/llm/openai_backend.py",
             "if retry_after is not None:\n", "if False:\n", CLIENT + ("-k", "retry")),
    Mutation("llm.client: 429 not retried", "sftdata/llm/openai_backend.py",
             "exc.status_code in (408, 409, 429)", "exc.status_code in (408, 409)", CLIENT),
    Mutation("llm.client: failed replies cached", "sftdata/llm/client.py",
             "if completion.ok and self.cache is not None:", "if self.cache is not None:", CLIENT),
    Mutation("llm.client: max_requests off by one", "sftdata/llm/client.py",
             "self.spend.requests >= cfg.max_requests", "self.spend.requests > cfg.max_requests", CLIENT),
    Mutation("llm.client: a success does not reset the failure streak", "sftdata/llm/client.py",
             "stats.succeeded += 1\n                self._consecutive_failures = 0",
             "stats.succeeded += 1", CLIENT),
    Mutation("llm.client: a retry stays on the same replica", "sftdata/llm/openai_backend.py",
             "(replica + attempt - 1) % len(self._clients)", "replica % len(self._clients)", CLIENT),
    # ---------------------------------------------------------------- finetune masking and batching
    Mutation("finetune.masking: prompt tokens trained", "sftdata/finetune/data.py",
             "labels=[IGNORE] * len(prompt_ids) + reply_ids", "labels=prompt_ids + reply_ids", MASKING),
    Mutation("finetune.masking: end-of-turn token not trained", "sftdata/finetune/data.py",
             "closed = reply_ids[:last + 1] if", "closed = reply_ids[:last] if", MASKING),
    Mutation("finetune.batching: targets not shifted", "sftdata/finetune/batching.py",
             "targets += example.labels[1:] + [IGNORE]", "targets += example.labels", BATCHING),
    Mutation("finetune.batching: packed positions do not restart", "sftdata/finetune/batching.py",
             "positions += range(len(example.input_ids))",
             "positions += range(len(positions), len(positions) + len(example.input_ids))", BATCHING),
    Mutation("finetune.batching: padding trained", "sftdata/finetune/batching.py",
             "targets = torch.full((len(rows), width), IGNORE, dtype=torch.long)",
             "targets = torch.full((len(rows), width), pad_id, dtype=torch.long)", BATCHING),
    Mutation("finetune.fused_lora: LoRA scaling dropped", "sftdata/finetune/fused_lora.py",
             "alpha=layer.scaling[adapter]", "alpha=1.0", FUSED),
    Mutation("finetune.fused_lora: adapter dropout skipped", "sftdata/finetune/fused_lora.py",
             "layer.lora_dropout[adapter](flat)", "flat", FUSED),
    Mutation("finetune.packed_attention: examples of a row attend to each other", "sftdata/finetune/packed_attention.py",
             "spans = sftdata_segments or [(0, query.shape[2])]", "spans = [(0, query.shape[2])]", FUSED),
    Mutation("finetune.packed_attention: not causal", "sftdata/finetune/packed_attention.py",
             "is_causal=True", "is_causal=False", FUSED),
    Mutation("finetune.batching: packed spans one token short", "sftdata/finetune/batching.py",
             "spans.append((len(ids), len(ids) + len(example.input_ids)))",
             "spans.append((len(ids), len(ids) + len(example.input_ids) - 1))", FUSED),
)


def copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "artifacts")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        else:
            shutil.copy2(source, dest / name)


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float) -> tuple[bool, float]:
    """(passed, seconds) of the focused tests on ``tree``; a timeout counts as a failure (killed)."""
    # one torch thread: the focused tests use tiny models, and with --jobs several runs share the cores
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               "-o", "addopts=", *tests]
    started = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, time.perf_counter() - started
    return result.returncode == 0, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", action="append", default=[], help="only mutations whose name contains this "
                                                               "(repeatable: any of them)")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--no-baseline", action="store_true", help="skip checking the tests pass unmutated")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per test run")
    parser.add_argument("--min-killed", type=float, default=0.9)
    parser.add_argument("-j", "--jobs", type=int, default=1, help="mutations tested at once")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.k or any(k in m.name for k in args.k)]
    if args.list:
        for m in chosen:
            print(f"{m.name}  [{m.path}]")
        return 0

    stale = [m for m in chosen if (ROOT / m.path).read_text(encoding="utf-8").count(m.old) != 1]
    for m in stale:
        print(f"STALE  {m.name}: its text occurs {(ROOT / m.path).read_text().count(m.old)} times in {m.path}")
    live = [m for m in chosen if m not in stale]
    with tempfile.TemporaryDirectory(prefix="sftdata-mutants-") as tmp:
        trees = queue.SimpleQueue()  # one scratch copy per worker: a mutation never sees another's edit
        for worker in range(max(1, args.jobs)):
            copy_tree(Path(tmp) / str(worker))
            trees.put(Path(tmp) / str(worker))
        if not args.no_baseline:
            tree = trees.get()
            for tests in dict.fromkeys(m.tests for m in live):
                passed, seconds = run_tests(tree, tests, args.timeout)
                if not passed:
                    print(f"baseline FAILED (unmutated): pytest {' '.join(tests)}; fix the tests first")
                    return 2
                print(f"baseline ok ({seconds:5.1f}s): {' '.join(tests)}", flush=True)
            trees.put(tree)

        def attempt(m: Mutation) -> tuple[Mutation, bool]:
            tree = trees.get()
            target = tree / m.path
            original = target.read_text(encoding="utf-8")
            target.write_text(original.replace(m.old, m.new), encoding="utf-8")
            try:
                passed, seconds = run_tests(tree, m.tests, args.timeout)
            finally:
                target.write_text(original, encoding="utf-8")
                trees.put(tree)
            print(f"{'SURVIVED' if passed else 'killed  '}  {seconds:6.1f}s  {m.name}", flush=True)
            return m, passed

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(pool.map(attempt, live))
        killed = [m for m, passed in outcomes if not passed]
        survived = [m for m, passed in outcomes if passed]
    total = len(killed) + len(survived)
    share = len(killed) / total if total else 0.0
    print(f"\nmutants: {len(killed)}/{total} killed ({share:.0%}), {len(survived)} survived, {len(stale)} stale")
    for m in survived:
        print(f"  survived: {m.name}  [{m.path}]  tests: {' '.join(m.tests)}")
    return 0 if share >= args.min_killed and not stale else 1


if __name__ == "__main__":
    sys.exit(main())
