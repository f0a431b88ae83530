"""The augment stage as the round runner drives it (see :mod:`sftdata.runner`).

Work: in round ``g`` of ``--rounds``, every parent (the input records in round 1, the survivors of
round ``g-1`` after that) meets every operation (or ``ops_per_record`` of them, drawn per parent).
Each runner round takes the next :data:`CHUNK` work items and
1. builds the candidates: rule ops locally, the others with a rewriting request;
2. applies the local checks (copied prompt phrases, unchanged, filter rules) and marks candidates
   that are already near-duplicates of the ROUGE index, so they are not answered;
3. sends the equality checks and answers of the rest, concurrently;
4. commits in work order: ROUGE-L against the index (the input set plus everything accepted so
   far; see :func:`rouge_key` for what is compared), then the equality verdict, then the answer
   rules; survivors join the index.
Every random choice and request seed comes from the work item itself (seed, round, parent id,
op), and commits run in work order, so the output does not depend on timing, chunking or on where
a run was stopped. A round that meets the budget commits the items before the first one it could
not pay for; the rest wait in the checkpointed position for the next run (their paid requests are
cached).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..core.records import Record, records_from_obj, rejected
from ..core.rundir import RunDir
from ..llm.base import Completion, Request
from ..llm.client import BUDGET, LLM
from . import evol
from .config import RULE_OPS, AugmentConfig
from .filtering import InstructionFilter
from .prompting import record_text
from .rules import _norm, keyword_variant, template_variant

STAGE = "augment"
CHUNK = 32  # work items per runner round (one checkpoint each); outputs do not depend on it
EQUAL_MAX_TOKENS = 8  # "Same" / "Different" / "相同" / "不同", with room for a short lead-in
# ops whose meaning-preserving rewrite keeps the parent's output and classification flag
SAME_MEANING = (evol.PARAPHRASE, "rule:template")


@dataclass(frozen=True)
class Item:
    """One (parent, op) pair of a round. ``key`` roots every random choice made for it."""

    parent: Record
    op: str
    lang: str
    key: str

    def rng(self, what: str) -> random.Random:
        return random.Random(f"{self.key}:{what}")

    def seed(self, what: str) -> int:
        return self.rng(what).getrandbits(31)


@dataclass
class Candidate:
    item: Item
    instruction: str = ""
    input: str = ""
    output: str = ""  # known before answering: the parent's for meaning-preserving ops
    detail: dict[str, Any] = field(default_factory=dict)
    needs_equal: bool = False
    needs_answer: bool = False
    rejection: tuple[str, dict] | None = None
    skipped: bool = False  # the op does not apply (no template changes it, no unused keyword)
    failed: bool = False  # an LLM request failed after every retry (see failures.jsonl)
    denied: bool = False  # the budget did not allow a request
    near_duplicate: bool = False  # not novel against the index as it stood before this round
    equal: Completion | None = None
    answer: Completion | None = None

    @property
    def live(self) -> bool:
        return not (self.rejection or self.skipped or self.failed or self.denied)

    @property
    def text(self) -> str:
        return record_text(self.instruction, self.input)

    @property
    def key(self) -> str:
        return rouge_key(self.item.op, self.instruction, self.input)


def rouge_key(op: str | None, instruction: str, input_text: str) -> str:
    """What ROUGE-L compares: the instruction, as in Self-Instruct; for complicate-input, whose
    instruction is its parent's by design, the instruction with its new input."""
    return record_text(instruction, input_text) if op == "complicate-input" else instruction


def new_counts() -> dict[str, Any]:
    return {"proposed": 0, "kept": 0, "failed": 0, "skipped": 0, "eliminated": {}}


class AugmentStage:
    def __init__(self, config: AugmentConfig, inputs: list[Record], keywords: list[str]) -> None:
        self.config = config
        self.ops = config.resolved_ops()
        self.inputs = inputs
        self.keywords = keywords
        self.filter = InstructionFilter(config)
        self.model_name = ""

    # ------------------------------------------------------------ Stage protocol
    def restore(self, rundir: RunDir, state: dict[str, Any] | None) -> None:
        self.rundir = rundir
        self.accepted = rundir.journal("accepted.jsonl")
        self.rejected = rundir.journal("rejected.jsonl")
        rundir.journal("failures.jsonl")  # created up front: an empty file says "no failures"
        state = state or {}
        self.round = state.get("round", 1)
        self.position = state.get("position", 0)
        self.finished = state.get("finished", False)
        self.counts: dict[str, dict[str, Any]] = {op: state.get("ops", {}).get(op) or new_counts()
                                                   for op in self.ops}
        self.kept_by_round: dict[str, int] = dict(state.get("kept_by_round", {}))
        from ..filter.rouge import RougeIndex  # numba: loaded when a run starts, not by every CLI command

        self.index = RougeIndex("auto", self.config.rouge_threshold)
        self.index.add_many(r.instruction for r in self.inputs)
        kept = [records_from_obj(row)[0] for row in self.accepted.read()]
        self.index.add_many(rouge_key(r.meta.get("op"), r.instruction, r.input) for r in kept)
        if self.round == 1:
            parents = self.first_parents()
        else:
            parents = [r for r in kept if r.meta.get("round") == self.round - 1]
        self.survivors = [r for r in kept if r.meta.get("round") == self.round]
        self.work = self.work_list(parents)
        self._settle()

    async def run_round(self, llm: LLM, round_no: int) -> None:
        self.model_name = llm.model_name
        cands = [self._start(item) for item in self.work[self.position:self.position + CHUNK]]
        await self._rewrite(llm, cands)
        cut = _first_denied(cands)
        for cand in cands[:cut]:
            self._local_checks(cand)
        await self._finish(llm, cands[:cut])
        cut = _first_denied(cands[:cut])
        for cand in cands[:cut]:
            self._commit(cand)
        self.position += cut
        self._settle()

    def done(self) -> bool:
        return self.finished

    def state(self) -> dict[str, Any]:
        return {"round": self.round, "position": self.position, "finished": self.finished,
                "ops": self.counts, "kept_by_round": self.kept_by_round}

    def progress(self) -> tuple[int, int, str]:
        done = sum(c["proposed"] for c in self.counts.values())
        left = 0 if self.finished else len(self.work) - self.position
        kept = sum(c["kept"] for c in self.counts.values())
        return done, done + left, f"round {self.round}/{self.config.rounds} kept={kept}"

    def summary(self) -> dict[str, Any]:
        reasons: Counter[str] = Counter()
        for counts in self.counts.values():
            reasons.update(counts["eliminated"])
        return {
            "out": str(self.rundir.path), "inputs": len(self.inputs), "parents": len(self.first_parents()),
            "ops": self.counts, "rounds": self.config.rounds, "round": self.round,
            "accepted": self.accepted.count, "rejected": self.rejected.count,
            "failed": sum(c["failed"] for c in self.counts.values()),
            "skipped": sum(c["skipped"] for c in self.counts.values()),
            "eliminated": dict(sorted(reasons.items())), "kept_by_round": self.kept_by_round,
        }

    # ------------------------------------------------------------ the work list
    def first_parents(self) -> list[Record]:
        first: dict[str, Record] = {}
        for record in self.inputs:  # exact duplicates would only make the same requests again
            first.setdefault(record.id, record)
        unique = list(first.values())
        return unique[: self.config.limit] if self.config.limit else unique

    def work_list(self, parents: list[Record]) -> list[Item]:
        items: list[Item] = []
        seen: set[str] = set()
        for parent in parents:
            if parent.id in seen:
                continue
            seen.add(parent.id)
            root = f"{self.config.seed}:{self.round}:{parent.id}"
            ops = self.ops
            if self.config.ops_per_record:
                picked = set(random.Random(f"{root}:pick").sample(range(len(ops)), self.config.ops_per_record))
                ops = [op for i, op in enumerate(ops) if i in picked]
            lang = self.filter.lang_of(parent)
            items += [Item(parent, op, lang, f"{root}:{op}") for op in ops]
        return items

    def _settle(self) -> None:
        """Move on to the next round (or finish) once the current round's work is all committed."""
        while not self.finished and self.position >= len(self.work):
            if self.round < self.config.rounds and self.survivors:
                self.round += 1
                self.work, self.survivors, self.position = self.work_list(self.survivors), [], 0
            else:
                self.finished = True

    # ------------------------------------------------------------ candidates
    def _start(self, item: Item) -> Candidate:
        parent, op = item.parent, item.op
        cand = Candidate(item, input=parent.input)
        if op in RULE_OPS:
            made = (template_variant(parent.instruction, item.lang, item.rng("template")) if op == "rule:template"
                    else keyword_variant(parent.instruction, item.lang, self.keywords, item.rng("keyword")))
            if made is None:
                cand.skipped = True
                return cand
            cand.instruction, cand.detail = made
            cand.output = parent.output if op == "rule:template" else ""
            cand.needs_answer = op == "rule:keywords"
            return cand
        cand.needs_equal = True
        if op == evol.PARAPHRASE and parent.output:
            cand.output = parent.output
        else:
            cand.needs_answer = True
        return cand

    async def _rewrite(self, llm: LLM, cands: list[Candidate]) -> None:
        pending = [c for c in cands if c.live and c.item.op not in RULE_OPS]
        prompts = [evol.rewrite_prompt(c.item.op, c.item.lang, c.item.parent) for c in pending]
        requests = [Request.chat(p, temperature=self.config.temperature, max_tokens=self.config.rewrite_max_tokens,
                                 seed=c.item.seed("rewrite"), tag=f"augment:{c.item.op}")
                    for c, p in zip(pending, prompts)]
        for cand, text, done in zip(pending, prompts, await llm.complete(requests)):
            if _unusable(cand, done):
                continue
            parsed = evol.parse_rewrite(cand.item.op, done.text, cand.item.parent, text.rsplit("\n", 1)[-1])
            if parsed is None or done.truncated:
                # the rejected record shows the raw reply, as far as it went
                cand.instruction = done.text.strip()
                cand.rejection = ("truncated", {"what": "rewrite"}) if done.truncated else ("unparsable", {})
            else:
                cand.instruction, cand.input = parsed

    def _local_checks(self, cand: Candidate) -> None:
        if not cand.live:
            return
        parent = cand.item.parent
        parent_text = record_text(parent.instruction, parent.input)
        phrase = evol.copied_phrase(cand.text, parent_text)
        if phrase is not None:
            cand.rejection = ("copied_prompt", {"phrase": phrase})
        elif _norm(cand.text) == _norm(parent_text):
            cand.rejection = ("unchanged", {})
        else:
            cand.rejection = self.filter.check(cand.instruction, cand.item.lang)
        if cand.rejection is None and self.filter.rouge:
            # already a near-duplicate: it will be rejected at commit whatever else happens, so
            # its equality check and answer would be wasted requests
            cand.near_duplicate = not self.index.check(cand.key).novel

    async def _finish(self, llm: LLM, cands: list[Candidate]) -> None:
        jobs: list[tuple[Candidate, str]] = []
        requests: list[Request] = []
        for cand in cands:
            if not cand.live or cand.near_duplicate:
                continue
            item, cfg = cand.item, self.config
            if cand.needs_equal:
                parent_text = record_text(item.parent.instruction, item.parent.input)
                requests.append(Request.chat(evol.equal_prompt(item.lang, parent_text, cand.text), temperature=0.0,
                                             max_tokens=EQUAL_MAX_TOKENS, seed=item.seed("equal"),
                                             tag="augment:equal"))
                jobs.append((cand, "equal"))
            if cand.needs_answer:
                requests.append(Request.chat(evol.answer_prompt(item.lang, cand.instruction, cand.input),
                                             temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                                             seed=item.seed("answer"), tag="augment:answer"))
                jobs.append((cand, "answer"))
        for (cand, what), done in zip(jobs, await llm.complete(requests)):
            if done.error == BUDGET:
                cand.denied = True
            setattr(cand, what, done)

    # ------------------------------------------------------------ committing
    def _commit(self, cand: Candidate) -> None:
        item = cand.item
        counts = self.counts[item.op]
        counts["proposed"] += 1
        if cand.skipped or cand.failed:
            counts["skipped" if cand.skipped else "failed"] += 1
            return
        rejection = cand.rejection
        if rejection is None and self.filter.rouge:
            match = self.index.check(cand.key)
            if not match.novel:
                rejection = ("rouge", {"score": round(match.score, 4), "most_similar": match.most_similar})
        if rejection is None and any(c is not None and not c.ok for c in (cand.equal, cand.answer)):
            counts["failed"] += 1
            return
        record = self._record(cand)
        if rejection is None:
            rejection = self._verdict(cand, record)
        if rejection is not None:
            reason, detail = rejection
            self.rejected.append(rejected(record, STAGE, reason, detail))
            counts["eliminated"][reason] = counts["eliminated"].get(reason, 0) + 1
            return
        self.index.add(cand.key)
        self.accepted.append(record.to_dict())
        self.survivors.append(record)
        counts["kept"] += 1
        self.kept_by_round[str(self.round)] = self.kept_by_round.get(str(self.round), 0) + 1

    def _verdict(self, cand: Candidate, record: Record) -> tuple[str, dict] | None:
        """The equality check's and the answer's elimination rules; fills the answer into ``record``."""
        if cand.answer is not None:
            record.output = cand.answer.text.strip()
            if cand.answer.reasoning:  # only there with llm.reasoning: keep; never part of the output
                record.meta["reasoning"] = cand.answer.reasoning
            if cand.answer.truncated:
                record.meta["finish_reason"] = "length"
        if cand.equal is not None:
            verdict = evol.parse_equal(cand.equal.text)
            record.meta["equal_check"] = verdict or "unclear"
            detail = {"verdict": verdict, "reply": cand.equal.text[:200]}
            if verdict == "same" and cand.item.op != evol.PARAPHRASE:
                return "equal", detail
            if verdict == "different" and cand.item.op == evol.PARAPHRASE:
                return "meaning_changed", detail
        if cand.answer is not None:
            return evol.answer_elimination(record.output) or self.filter.check_answer(record)
        return None

    def _record(self, cand: Candidate) -> Record:
        item, parent = cand.item, cand.item.parent
        meta: dict[str, Any] = {"op": item.op, "round": self.round, **cand.detail}
        if item.op != "rule:template":
            meta["model"] = self.model_name
        source = f"evol:{item.op}" if item.op in evol.EVOL_OPS else item.op
        return Record(instruction=cand.instruction, input=cand.input, output=cand.output, lang=item.lang,
                      is_classification=parent.is_classification if item.op in SAME_MEANING else None,
                      source=source, parent_id=parent.id, meta=meta)


def _unusable(cand: Candidate, done: Completion) -> bool:
    if done.error == BUDGET:
        cand.denied = True
    elif not done.ok:
        cand.failed = True
    return not done.ok


def _first_denied(cands: list[Candidate]) -> int:
    return next((i for i, c in enumerate(cands) if c.denied), len(cands))
