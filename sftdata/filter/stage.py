"""The filter stage: rules, then ROUGE-L novelty, over a stream of records.

Order per record: the instruction rules (length, blacklist, format, language), the instance rules
(empty output, output equal to input, text ending in ":"), an exact duplicate of a kept record, then
ROUGE-L of the instruction against everything kept so far and the ``against`` texts (seeds, say).

Records that share their instruction are instances of one task (a seed task with several
instances): the first of them to reach the ROUGE-L check decides for all, so a task's instances
are kept or dropped together and never knock each other out. Among them, a record whose input
equals that of a kept instance of the task is a duplicate (the same prompt twice, whatever the
output). For distinct instructions the decisions are exactly those of scoring each against every
kept one with rouge-score.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.lock import DirLock
from ..core.records import Record, dumps, read_all, rejected
from ..core.rundir import writable_dir
from .rules import RULES, FilterConfig, check_instance, check_instruction

if TYPE_CHECKING:
    from .rouge import RougeMatch

__all__ = ["filter_records", "run_filter", "Verdict"]

STAGE = "filter"
_CHUNK = 512  # records per call into the compiled ROUGE-L loop (the result is the same as one by one)
# meta.rouge_max of a kept record is the exact maximum while the index holds at most this many
# instructions (one set intersection per stored text); beyond it, it is null rather than a lower bound
EXACT_NEAREST_MAX = 20_000

Verdict = tuple[str, dict[str, Any]] | None
# (records, config, against, out_dir) -> (record, verdict) in input order: filter_records, or the
# sharded one of sftdata.cluster.filter (--ray)
Engine = Callable[[list[Record], FilterConfig, list[str], Path], Iterable[tuple[Record, Verdict]]]


def filter_records(records: Iterable[Record], config: FilterConfig, against: Iterable[str] = (),
                   rouge_index: Any = None) -> Iterator[tuple[Record, Verdict]]:
    """Yield ``(record, None)`` for a kept record (a copy whose meta holds ``rouge_max`` and
    ``most_similar``) or ``(record, (reason, detail))`` for a rejected one, in input order.

    ``against``: texts preloaded into the ROUGE-L index (never yielded). Streams: holds the index
    and one chunk of records. ``config.instance_rules`` None counts as on here. ``rouge_index``:
    the ROUGE-L index to use instead of a fresh one (sftdata.cluster.dedup's precomputed decisions).
    """
    config.validate()
    if rouge_index is None and config.rouge_blocking == "lsh" and config.enabled("rouge"):
        records, against = list(records), list(against)  # the LSH pairs are found over all of them at once
        rouge_index = _lsh_index(records, config, against)
    state = _State(config, rouge_index)
    if state.index is not None:
        state.index.add_many(against)
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= _CHUNK:
            yield from state.run(chunk)
            chunk = []
    if chunk:
        yield from state.run(chunk)


def _rouge_index(config: FilterConfig) -> Any:
    from .rouge import RougeIndex  # numpy + numba: loaded by a filter run, not by `import`

    return RougeIndex(config.rouge_tokenizer, config.rouge_threshold)


def _lsh_index(records: list[Record], config: FilterConfig, against: list[str]) -> Any:
    """``--rouge-blocking lsh``: the pairs above the threshold among the LSH candidates of every
    distinct instruction (a superset of those the rules let through, in the same order), replayed."""
    from .lsh import EdgeIndex, lsh_pairs

    texts = [*against, *dict.fromkeys(record.instruction for record in records)]
    return EdgeIndex(texts, len(against), lsh_pairs(texts, config), config.rouge_threshold)


class _State:
    def __init__(self, config: FilterConfig, index: Any = None) -> None:
        self.config = config
        self.index = (index if index is not None else _rouge_index(config)) if config.enabled("rouge") else None
        self.instances = config.instance_rules is not False
        self.kept_prompts: set[tuple[str, str]] = set()  # (instruction, input) of kept records
        self.task_verdicts: dict[str, RougeMatch] = {}  # instruction -> ROUGE-L verdict of its first record

    def rules(self, record: Record) -> Verdict:
        found = check_instruction(record.instruction, self.config, expected_lang=record.lang)
        if found is None and self.instances:
            found = check_instance(record, self.config)
        return found

    def run(self, chunk: list[Record]) -> Iterator[tuple[Record, Verdict]]:
        verdicts = [self.rules(record) for record in chunk]
        if self.index is not None:
            # one check per new instruction, in order; later records of a task follow the first
            fresh: dict[str, None] = {}
            for record, verdict in zip(chunk, verdicts):
                if verdict is None and record.instruction not in self.task_verdicts:
                    fresh.setdefault(record.instruction)
            texts = list(fresh)
            stored = len(self.index)
            for text, match in zip(texts, self.index.check_and_add_many(texts)):
                if match.novel:  # check's neighbour is a lower bound: the exact one, among those before it
                    exact = stored <= EXACT_NEAREST_MAX and self.config.rouge_blocking == "exact"
                    match = self.index.nearest(text, among=stored) if exact else \
                        dataclasses.replace(match, score=None, most_similar=None)  # unknown, not a guess
                    stored += 1
                self.task_verdicts[text] = match
        for record, verdict in zip(chunk, verdicts):
            prompt = (record.instruction, record.input)
            if verdict is None and self.config.enabled("duplicate") and prompt in self.kept_prompts:
                verdict = ("duplicate", {"same": "instruction and input"})
            if verdict is None:
                verdict, record = self._rouge(record)
            if verdict is None:
                self.kept_prompts.add(prompt)
            yield record, verdict

    def _rouge(self, record: Record) -> tuple[Verdict, Record]:
        meta = dict(record.meta)
        if self.index is not None:
            match = self.task_verdicts[record.instruction]
            if not match.novel:
                return ("rouge", {"score": match.score, "most_similar": match.most_similar,
                                  "threshold": self.config.rouge_threshold}), record
            meta.update(rouge_max=match.score, most_similar=match.most_similar)
        lang = record.lang or (self.config.lang if self.config.enabled("language") else None)
        return None, dataclasses.replace(record, meta=meta, lang=lang)


def run_filter(in_paths: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
               config: FilterConfig, against_paths: Iterable[str | os.PathLike[str]] = (),
               progress: bool = False, engine: Engine | None = None) -> dict[str, Any]:
    """Filter JSONL files into ``out_dir/accepted.jsonl`` and ``out_dir/rejected.jsonl``.

    Every input (and --against) file is read and validated first, so a bad line stops the run
    with ``file:line`` before anything is written; both outputs appear together (temp + rename).
    ``config.instance_rules`` None: instance rules on unless no input record has an output yet
    (instructions only, as after Self-Instruct's first step). ``engine``: how the verdicts are
    computed (default: :func:`filter_records` in this process). Returns the summary.
    """
    config.validate()
    started = time.monotonic()
    records = read_all(in_paths)
    against = [record.instruction for record in read_all(against_paths)]
    if config.instance_rules is None:
        config = dataclasses.replace(config, instance_rules=any(r.output.strip() for r in records))
    out = Path(out_dir)
    writable_dir(out)
    with DirLock(out):  # one writer per directory
        counts = {"accepted": 0, **{rule: 0 for rule in RULES}}
        targets = {name: out / f"{name}.jsonl" for name in ("accepted", "rejected")}
        temps = {name: path.with_name(path.name + ".tmp") for name, path in targets.items()}
        stream = (filter_records(records, config, against) if engine is None
                  else engine(records, config, against, out))
        if progress:
            from tqdm import tqdm

            stream = tqdm(stream, total=len(records), desc="filter", unit="rec", dynamic_ncols=True)
        with open(temps["accepted"], "w", encoding="utf-8", newline="\n") as kept, \
                open(temps["rejected"], "w", encoding="utf-8", newline="\n") as dropped:
            for record, verdict in stream:
                if verdict is None:
                    kept.write(dumps(record) + "\n")
                    counts["accepted"] += 1
                else:
                    dropped.write(dumps(rejected(record, STAGE, verdict[0], verdict[1])) + "\n")
                    counts[verdict[0]] = counts.get(verdict[0], 0) + 1
        for name in targets:
            os.replace(temps[name], targets[name])
        summary = {
            "input": len(records), "against": len(against), "accepted": counts.pop("accepted"),
            "rejected": sum(counts.values()), "by_reason": counts,
            "instance_rules": bool(config.instance_rules), "seconds": round(time.monotonic() - started, 3),
            "out": str(out),
        }
        (out / "filter_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return summary
