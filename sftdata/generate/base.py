"""What both generate stages share: journals, the in-loop filters, instance cleanup, counts, summary.

Files (docs/architecture.md, "The run directory"): ``accepted.jsonl`` (one Record per instance), ``rejected.jsonl``
(every rejected instruction or instance with its reason; ``detail.level`` says which: "reply"
for a reply nothing could be parsed from, "instruction", or "instance"),
``instructions.jsonl`` (the instruction pool: instructions that passed the filters, each with its
classification, ROUGE-L neighbour and instance count). Everything here is rebuilt from those
journals and the checkpoint state, so a resumed run continues exactly where the last round ended.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..clean import junk
from ..core.records import Record, records_from_obj, rejected, write_jsonl
from ..core.rundir import Journal, RunDir
from ..core.stats import table1
from ..filter.rouge import RougeIndex
from ..filter.rules import check_instance, check_instruction
from ..llm.base import Completion, Request
from ..llm.client import BUDGET, LLM
from .config import GenerateConfig, SeedTask
from .parse import Instance, Parsed, Unparsed

STAGE = "generate"
FAILED_TRIES = 3  # a classification or instance request that fails this often is given up
REJECTED_TEXT_CHARS = 10_000  # longest unparsable text kept in rejected.jsonl (its size is kept too)
# the model does not write the requested language (the embedded 135M model asked for Chinese answers
# in English): once this many instructions were parsed and this share of them failed the language
# rule, the run ends early with that explanation instead of crawling on for hours
WRONG_LANGUAGE_MIN = 30
WRONG_LANGUAGE_SHARE = 0.8


class GenerateStage:
    """Base of the Self-Instruct and Alpaca stages (the runner's ``Stage`` protocol)."""

    source = "self-instruct"

    def __init__(self, config: GenerateConfig, seeds: list[SeedTask], lang: str) -> None:
        self.config = config
        self.seeds = seeds
        self.lang = lang
        self.filter_config = config.filter_config(lang)
        self.model = ""
        self.records: list[Record] = []
        self.ids: set[str] = set()
        self.pool: list[str] = []  # instructions.jsonl, in order
        self.tasks_done = 0  # pool entries with at least one accepted instance
        self.rejects: Counter[tuple[str, str]] = Counter()  # (level, reason)
        self.counts: Counter[str] = Counter()  # replies, failures... (saved in the state)
        self.stall = 0
        self.reject_lines: dict[tuple[str, ...], int] = {}  # (level, reason, texts) -> its rejected.jsonl line
        # line -> the request keys of the replies that repeated that rejection (each reply keeps a trace)
        self.reject_repeats: dict[int, list[str | None]] = {}
        self.shown: list[str] = []  # the example texts of the prompt whose reply is being taken
        self.index = RougeIndex(tokenizer=config.rouge_tokenizer, threshold=config.rouge_threshold)

    # ------------------------------------------------------------ runner protocol
    def restore(self, rundir: RunDir, state: dict[str, Any] | None) -> None:
        self.accepted_j: Journal = rundir.journal("accepted.jsonl")
        self.rejected_j: Journal = rundir.journal("rejected.jsonl")
        self.pool_j: Journal = rundir.journal("instructions.jsonl")
        for row in self.accepted_j.read():
            record = records_from_obj(row)[0]
            self.records.append(record)
            self.ids.add(record.id)
        for row in self.pool_j.read():
            self.pool.append(row["instruction"])
            self.tasks_done += row.get("instances", 0) > 0
        state = state or {}
        self.reject_repeats = {int(k): list(v) for k, v in state.get("reject_repeats", {}).items()}
        for line, row in enumerate(self.rejected_j.read()):
            record = row["record"]
            key = (row["detail"].get("level", "instruction"), row["reason"], record.get("instruction", ""),
                   record.get("input", ""), record.get("output", ""))
            self.reject_lines[key] = line
            # a folded file (finish) holds the repeats itself; before that, the state holds them
            if line not in self.reject_repeats:
                self.reject_repeats[line] = list(row.get("repeat_request_keys", []))
            self.rejects[key[:2]] += 1 + len(self.reject_repeats[line])
        self.counts = Counter(state.get("counts", {}))
        self.stall = state.get("stall", 0)
        self.restore_state(state)
        kept = [s.instruction for s in self.seeds] + self.pool + self.pending_instructions()
        self.index.add_many(kept)
        self.known = set(kept)

    def keep_instruction(self, text: str) -> None:
        """An accepted instruction joins the pool at once: later ones are compared against it."""
        self.index.add(text)
        self.known.add(text)

    def restore_state(self, state: dict[str, Any]) -> None:
        """Subclasses read their own part of the checkpoint state here."""

    def pending_instructions(self) -> list[str]:
        return []

    def state(self) -> dict[str, Any]:
        repeats = {str(line): keys for line, keys in sorted(self.reject_repeats.items()) if keys}
        return {"counts": dict(sorted(self.counts.items())), "stall": self.stall, "reject_repeats": repeats}

    def finish(self, rundir: RunDir) -> None:
        """Fold the repeats into rejected.jsonl: each rejection once, with how often it came and the
        request keys of the replies that repeated it."""
        if not any(self.reject_repeats.values()):
            return
        rows = self.rejected_j.read()
        for line, row in enumerate(rows):
            repeats = self.reject_repeats.get(line, [])
            row["count"] = 1 + len(repeats)
            if repeats:
                row["repeat_request_keys"] = repeats
        self.rejected_j.close()
        write_jsonl(self.rejected_j.path, rows)

    def done(self) -> bool:
        return self.tasks_done >= self.config.num_instructions or self.stalled

    @property
    def stalled(self) -> bool:
        return self.stall >= self.config.stall_rounds or self.wrong_language

    @property
    def wrong_language(self) -> bool:
        instr = self._level("instruction")
        parsed = self.accepted_instructions() + sum(instr.values())
        return parsed >= WRONG_LANGUAGE_MIN and instr["language"] >= WRONG_LANGUAGE_SHARE * parsed

    def stop_reason(self) -> str | None:
        """Why a run ended before its target, in words for the user."""
        if self.wrong_language:
            instr = self._level("instruction")
            parsed = self.accepted_instructions() + sum(instr.values())
            return (f"stopped early: {instr['language']} of {parsed} instructions the model wrote were not in "
                    f"'{self.lang}' (rule 'language'); this model does not write that language. Use a model "
                    "that does (--base-url / --model)")
        if self.stall >= self.config.stall_rounds:
            return (f"stopped early: no new task in the last {self.config.stall_rounds} rounds; see rejected.jsonl "
                    "for why (the model may not follow the prompts)")
        return None

    def progress(self) -> tuple[int, int, str]:
        return self.tasks_done, self.config.num_instructions, \
            f"rec={len(self.records)} acc={self._rate('instruction'):.0%}"

    # ------------------------------------------------------------ requests
    async def complete(self, llm: LLM, requests: list[Request]) -> list[tuple[Request, Completion, str]]:
        """Complete ``requests``; (request, completion, cache key) in request order."""
        self.model = llm.model_name
        if not requests:
            return []
        completions = await llm.complete(requests)
        return [(r, c, r.cache_key(llm.backend.name, llm.backend.model)[:16]) for r, c in zip(requests, completions)]

    async def take_replies(self, llm: LLM, requests: list[Request], kind: str, parse: Callable[[str], Parsed],
                           take: Callable[[Any, bool, dict[str, Any]], None], round_no: int) -> bool:
        """Complete ``requests`` and hand each item parsed from the replies to ``take(item, cut, meta)``,
        in request order, then reply order; ``cut``: the reply's last entry and the token limit cut it.

        Replies are counted under ``kind`` (see :meth:`count_reply`). A reply nothing could be parsed
        from is rejected whole ("reply" level); an unparsed entry is rejected at the "instruction"
        level ("truncated" when cut, else "parse_error"). True when the budget denied a request.
        """
        denied = False
        for request, completion, key in await self.complete(llm, requests):
            # the texts this reply's prompt showed: a record copying one is junk (clean_instances, Alpaca)
            self.shown = junk.prompt_examples(request.messages[-1][1])
            if completion.error == BUDGET:
                denied = True
                continue
            if not completion.ok:
                self.count_reply(kind, completion, None)
                continue
            parsed = parse(completion.text)
            self.count_reply(kind, completion, len(parsed.items))
            meta = {"model": self.model, "request_key": key, "request_id": completion.request_id, "round": round_no}
            if completion.reasoning:  # only there with llm.reasoning: keep
                meta["reasoning"] = completion.reasoning
            if parsed.unparsable:
                self._reject_unparsed(parsed.entries[0], "parse_error", "reply", meta)
                continue
            for position, entry in enumerate(parsed.entries):
                cut = completion.truncated and position == len(parsed.entries) - 1
                if isinstance(entry, Unparsed):
                    self._reject_unparsed(entry, "truncated" if cut else "parse_error", "instruction", meta)
                else:
                    take(entry, cut, meta)
        return denied

    def _reject_unparsed(self, entry: Unparsed, reason: str, level: str, meta: dict[str, Any]) -> None:
        raw, size = entry.raw, {}
        if len(raw) > REJECTED_TEXT_CHARS:  # a multi-megabyte reply is kept as its start and its size
            raw, size = raw[:REJECTED_TEXT_CHARS], {"raw_chars": len(entry.raw), "raw_truncated": True}
        self.reject(Record(raw, lang=self.lang, source=self.source, meta=meta),
                    reason, level, raw=raw, why=entry.why, **size)

    def requests_needed(self, kind: str, wanted: int, accepted: int, per_request: int) -> int:
        """Enough requests for ``wanted`` more items at the yield seen so far: ``accepted`` items over
        the answered ``kind`` replies, or half the ``per_request`` asked for before any answer."""
        answered = self.counts[f"{kind}_replies"] - self.counts[f"{kind}_failed"]
        expected = accepted / answered if answered else per_request / 2
        return max(1, min(self.config.round_size, math.ceil(wanted / max(expected, 0.5))))

    def sample_prompt_tasks(self, rng: random.Random, machine: int) -> list[str]:
        """The original's mix: up to ``machine`` pool instructions, seed instructions for the rest, shuffled."""
        total = self.config.prompt_seed_tasks + self.config.machine_tasks_in_prompt
        picked = rng.sample(self.pool, min(machine, len(self.pool))) if machine else []
        seeds = [s.instruction for s in self.seeds]
        picked += rng.sample(seeds, min(total - len(picked), len(seeds)))
        rng.shuffle(picked)
        return picked

    # ------------------------------------------------------------ filters
    def check_instruction(self, text: str) -> tuple[str, dict[str, Any]] | dict[str, Any]:
        """The filter stage's rules, then ROUGE-L against seeds and pool: a (reason, detail) rejection,
        or the ROUGE-L neighbour (``rouge_max``, ``most_similar``) of an accepted instruction."""
        found = check_instruction(text, self.filter_config)
        if found is not None:
            return found[0], dict(found[1] or {})
        junk_found = junk.instruction_junk(text)
        if junk_found is not None:
            return junk_found
        if text in self.known:  # an exact copy of a seed or a kept instruction, even with rouge off
            return "duplicate", {"rouge_max": 1.0, "most_similar": text}
        if "rouge" in self.filter_config.disabled:
            return {"rouge_max": None, "most_similar": None}
        match = self.index.check(text)
        if match.novel:  # check's neighbour of a novel text is a lower bound (often none): find the real one
            match = self.index.nearest(text)
        neighbour = {"rouge_max": round(match.score, 4), "most_similar": match.most_similar}
        if not match.novel:
            return "rouge", neighbour
        return neighbour

    def clean_instances(self, instruction: str, entries: list, truncated: bool, limit: int,
                        is_classification: bool | None, meta: dict[str, Any], prompt: str = "") -> list[Record]:
        """Step 4 for one task: reject bad instances (with reasons), return the ones to keep.

        Drops a cut-off last instance, instances the filter stage's instance rules reject (empty
        output, output equal to input, output ending in ":"), instances copied from the prompt's own
        demonstrations, the whole task when one non-empty input got different outputs (as the
        original: a task without input may have many answers), exact duplicates, and instances
        beyond ``limit``.
        """
        candidates: list[Record] = []
        shown = junk.prompt_examples(prompt, exclude=[instruction])  # where a weak model finds text to copy
        for position, entry in enumerate(entries):
            cut = truncated and position == len(entries) - 1
            if isinstance(entry, Unparsed):
                self.reject(Record(instruction, lang=self.lang, is_classification=is_classification,
                                   source=self.source, meta=meta),
                            "truncated" if cut else "parse_error", "instance", raw=entry.raw, why=entry.why)
                continue
            record = self.instance_record(instruction, entry, is_classification, meta)
            reason = ("truncated", {}) if cut else self.instance_problem(record) or self.junk(record, shown)
            if reason:
                self.reject(record, reason[0], "instance", **reason[1])
            else:
                candidates.append(record)
        outputs: dict[str, set[str]] = {}
        for record in candidates:
            if record.input.strip():
                outputs.setdefault(_norm(record.input), set()).add(_norm(record.output))
        clash = sorted(k for k, v in outputs.items() if len(v) > 1)
        kept: list[Record] = []
        for record in candidates:
            if clash:
                self.reject(record, "inconsistent_outputs", "instance", input=clash[0])
            elif record.id in self.ids or any(r.id == record.id for r in kept):
                self.reject(record, "duplicate", "instance")
            elif len(kept) >= limit:
                self.reject(record, "surplus", "instance", limit=limit)
            else:
                kept.append(record)
        return kept

    def instance_record(self, instruction: str, entry: Instance, is_classification: bool | None,
                        meta: dict[str, Any]) -> Record:
        return Record(instruction=instruction, input=entry.input, output=entry.output, lang=self.lang,
                      is_classification=is_classification, source=self.source, meta=dict(meta))

    def junk(self, record: Record, shown: list[str]) -> tuple[str, dict[str, Any]] | None:
        """clean.junk's checks on an instance: decode damage, scaffolding, copies of what the prompt showed
        (the instruction itself went through :meth:`check_instruction`)."""
        return junk.record_junk(record.instruction, record.input, record.output, shown, check_instruction=False)

    def instance_problem(self, record: Record) -> tuple[str, dict[str, Any]] | None:
        """The filter stage's instance rules: empty_output, output_equals_input, ends_with_colon."""
        found = check_instance(record, self.filter_config)
        return (found[0], dict(found[1] or {})) if found is not None else None

    # ------------------------------------------------------------ journals
    def accept(self, record: Record) -> None:
        self.accepted_j.append(record)
        self.records.append(record)
        self.ids.add(record.id)

    def reject(self, record: Record, reason: str, level: str, **detail: Any) -> None:
        """Journal a rejection once: the same record rejected again for the same reason (a seed the model
        echoes round after round) only counts up; :meth:`finish` writes the counts into the file."""
        self.rejects[(level, reason)] += 1
        key = (level, reason, record.instruction, record.input, record.output)
        line = self.reject_lines.get(key)
        if line is not None:
            self.reject_repeats.setdefault(line, []).append(record.meta.get("request_key"))
            return
        self.reject_lines[key] = self.rejected_j.count
        self.rejected_j.append({**rejected(record, STAGE, reason, {"level": level, **detail}), "count": 1})

    def add_to_pool(self, row: dict[str, Any]) -> None:
        self.pool_j.append(row)
        self.pool.append(row["instruction"])
        self.tasks_done += row["instances"] > 0

    def count_reply(self, kind: str, completion: Completion, parsed_items: int | None) -> None:
        self.counts[f"{kind}_replies"] += 1
        if not completion.ok:
            self.counts[f"{kind}_failed"] += 1
        elif not completion.text.strip():
            self.counts[f"{kind}_empty"] += 1
            self.counts[f"{kind}_unparsable"] += 1
        elif parsed_items == 0:
            self.counts[f"{kind}_unparsable"] += 1
        if completion.truncated:
            self.counts[f"{kind}_truncated"] += 1

    def end_round(self, progressed: bool, denied: bool) -> None:
        """Stall bookkeeping: a round cut short by the budget says nothing about the model."""
        if not denied:
            self.stall = 0 if progressed else self.stall + 1

    # ------------------------------------------------------------ summary
    def _level(self, level: str) -> Counter[str]:
        return Counter({reason: n for (lvl, reason), n in self.rejects.items() if lvl == level})

    def accepted_instructions(self) -> int:
        return len(self.pool) + len(self.pending_instructions())

    def _rate(self, level: str) -> float:
        accepted = self.accepted_instructions() if level == "instruction" else len(self.records)
        total = accepted + sum(self._level(level).values())
        return accepted / total if total else 0.0

    def summary(self) -> dict[str, Any]:
        instr, inst = self._level("instruction"), self._level("instance")
        return {
            "mode": self.config.mode, "lang": self.lang, "model": self.model,
            "target_instructions": self.config.num_instructions,
            "instructions": self.tasks_done, "pool": len(self.pool), "records": len(self.records),
            "stalled": self.stalled, "stop_reason": self.stop_reason(),
            "table1": table1(self.records),
            "instruction_filter": {
                "parsed": self.accepted_instructions() + sum(instr.values()),
                "accepted": self.accepted_instructions(), "acceptance": round(self._rate("instruction"), 4),
                **{f"rejected_{k}": v for k, v in sorted(instr.items())}},
            "instance_filter": {
                "parsed": len(self.records) + sum(inst.values()), "accepted": len(self.records),
                "acceptance": round(self._rate("instance"), 4),
                **{f"rejected_{k}": v for k, v in sorted(inst.items())}},
            "unparsable_replies": sum(n for k, n in self.counts.items() if k.endswith("_unparsable")),
            "replies": dict(sorted(self.counts.items())),
        }


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()
