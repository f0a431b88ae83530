"""The judge's library functions: judge records into a run directory, score candidates, compare pairs.

Every request goes through :class:`sftdata.llm.client.LLM` (cache, budget, concurrency, retries,
request log). A reply with no verdict is asked once more with a stricter instruction (the first
reply stays in the conversation); if that also fails the raw text is recorded and the score is None.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.config import to_plain
from ..core.errors import ConfigError
from ..core.records import Record, read_all
from ..llm.base import Request
from ..llm.client import BUDGET, LLM, LLMConfig
from . import rubrics
from .config import JudgeConfig
from .judgement import Candidates, Judgement, Pair, PairVerdict

WEAK_JUDGE = ("the embedded SmolLM2-135M-Instruct is a weak judge: it rarely answers in the rubric's format and "
              "its verdicts are no better than chance (see calibration.json); set --judge-model / "
              "--judge-base-url to a strong model for real use")


@dataclass(frozen=True)
class _Job:
    """One judge question: a prompt in a language under a rubric."""

    rubric: str
    lang: str
    prompt: str
    seed: int


@dataclass
class _Answer:
    reading: rubrics.Reading | None  # None: no verdict after every attempt
    raw: str
    attempts: int
    error: str | None  # unparsable | request_failed | budget


def language(config: JudgeConfig, instruction: str, declared: str | None = None) -> str:
    """The prompt language: --lang, else the record's declared one, else detected (zh or en)."""
    if config.lang != "auto":
        return config.lang
    if declared in ("en", "zh"):
        return declared
    from ..filter.rules import detect_lang

    return "zh" if detect_lang(instruction) == "zh" else "en"


def _seed(config: JudgeConfig, *parts: str) -> int:
    digest = hashlib.sha256("\x1f".join((str(config.seed), *parts)).encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


async def _ask(llm: LLM, jobs: Sequence[_Job], config: JudgeConfig) -> list[_Answer]:
    """Send every job; resend the unreadable ones once with the stricter instruction."""
    first = [Request.chat(job.prompt, temperature=config.temperature, max_tokens=config.max_tokens,
                          seed=job.seed, tag=f"judge:{job.rubric}") for job in jobs]
    answers: list[_Answer] = []
    for job, done in zip(jobs, await llm.complete(first)):
        if not done.ok:
            answers.append(_Answer(None, "", done.attempts, "budget" if done.error == BUDGET else "request_failed"))
            continue
        reading = rubrics.read(job.rubric, done.text)
        answers.append(_Answer(reading if reading.ok else None, done.text, 1, None if reading.ok else "unparsable"))
    retry = [i for i, a in enumerate(answers) if a.error == "unparsable"] if config.retry_unparsable else []
    if retry:
        again = [Request(messages=(("user", jobs[i].prompt), ("assistant", answers[i].raw),
                                   ("user", rubrics.strict_instruction(jobs[i].rubric, jobs[i].lang))),
                         temperature=config.temperature, max_tokens=config.max_tokens, seed=jobs[i].seed,
                         tag=f"judge:{jobs[i].rubric}:strict") for i in retry]
        for i, done in zip(retry, await llm.complete(again)):
            if done.error == BUDGET:
                answers[i] = _Answer(None, answers[i].raw, 1, "budget")
            elif done.ok:
                reading = rubrics.read(jobs[i].rubric, done.text)
                answers[i] = _Answer(reading if reading.ok else None, done.text, 2,
                                     None if reading.ok else "unparsable")
            else:
                answers[i] = _Answer(None, answers[i].raw, 2, "unparsable")
    return answers


def _judgement(rubric: str, lang: str, answer: _Answer, model: str) -> Judgement:
    if answer.reading is None:
        return Judgement(rubric=rubric, score=None, model=model, lang=lang, attempts=answer.attempts,
                         raw=answer.raw, error=answer.error)
    r = answer.reading
    return Judgement(rubric=rubric, score=r.score, verdicts=r.verdicts, rationale=r.rationale, model=model,
                     lang=lang, attempts=answer.attempts, rating=r.rating)


async def score_candidates(llm: LLM, items: Sequence[Candidates], config: JudgeConfig) -> list[list[Judgement]]:
    """Judge every response of every item on its own, by ``config.rubric`` (``score`` or
    ``self-instruct``; ``pairwise`` is taken as ``score``). Returns one list of Judgements per item,
    in response order. A judgement with ``score is None`` has ``error`` set and the raw reply."""
    rubric = rubrics.SCORE if config.rubric == rubrics.PAIRWISE else config.rubric
    jobs, where = [], []
    for i, item in enumerate(items):
        lang = language(config, item.instruction, item.lang)
        for j, response in enumerate(item.responses):
            text = rubrics.prompt(rubric, lang, item.instruction, item.input, response)
            jobs.append(_Job(rubric, lang, text, _seed(config, rubric, item.instruction, item.input, response)))
            where.append((i, j))
    answers = await _ask(llm, jobs, config)
    out: list[list[Judgement]] = [[None] * len(item.responses) for item in items]  # type: ignore[list-item]
    for (i, j), job, answer in zip(where, jobs, answers):
        out[i][j] = _judgement(rubric, job.lang, answer, llm.model_name)
    return out


_SWAP = {"A": "B", "B": "A", "tie": "tie", None: None}


async def compare_pairs(llm: LLM, pairs: Sequence[Pair], config: JudgeConfig) -> list[PairVerdict]:
    """Ask which response of each pair is better, in both orders (A first, then B first). Orders that
    name different winners make a tie (position bias removed; ``position_consistent`` False says so).
    One order unreadable: the other decides. Both unreadable: ``winner`` None, ``error`` set."""
    jobs: list[_Job] = []
    langs = []
    for pair in pairs:
        lang = language(config, pair.instruction, pair.lang)
        langs.append(lang)
        for first, second in ((pair.response_a, pair.response_b), (pair.response_b, pair.response_a)):
            text = rubrics.prompt(rubrics.PAIRWISE, lang, pair.instruction, pair.input, first, second)
            jobs.append(_Job(rubrics.PAIRWISE, lang, text,
                             _seed(config, "pairwise", pair.instruction, pair.input, first, second)))
    answers = await _ask(llm, jobs, config)
    return [_pair_verdict(answers[2 * k], answers[2 * k + 1], langs[k], llm.model_name) for k in range(len(pairs))]


def _pair_verdict(ab: _Answer, ba: _Answer, lang: str, model: str) -> PairVerdict:
    first = ab.reading.winner if ab.reading else None
    second = _SWAP[ba.reading.winner if ba.reading else None]
    read = [w for w in (first, second) if w is not None]
    winner = None if not read else read[0] if len(read) == 1 or read[0] == read[1] else "tie"
    consistent = None if len(read) < 2 else first == second
    attempts = max(ab.attempts, ba.attempts)
    rationale = " | ".join(a.reading.rationale for a in (ab, ba) if a.reading and a.reading.rationale)
    if winner is None:
        failed = ab if ab.error in ("budget", "request_failed") else ba
        judgement = Judgement(rubric=rubrics.PAIRWISE, score=None, verdicts={"ab": first, "ba": second},
                              model=model, lang=lang, attempts=attempts, raw=f"{ab.raw}\n---\n{ba.raw}",
                              error=failed.error or "unparsable")
    else:
        judgement = Judgement(rubric=rubrics.PAIRWISE, score={"A": 1.0, "B": 0.0, "tie": 0.5}[winner],
                              verdicts={"ab": first, "ba": second}, rationale=rationale[:400], model=model,
                              lang=lang, attempts=attempts, winner=winner, position_consistent=consistent)
    return PairVerdict(winner=winner, ab=first, ba=second, judgement=judgement)


def pair_of(record: Record) -> Pair:
    """A pairwise record: response A in ``output``, response B in ``meta.output_b``."""
    output_b = record.meta.get("output_b")
    if not isinstance(output_b, str):
        raise ConfigError(f"record {record.id} has no meta.output_b (response B) for the pairwise rubric",
                          "--rubric")
    return Pair(record.instruction, record.output, output_b, record.input, record.lang)


async def judge_batch(llm: LLM, records: Sequence[Record], config: JudgeConfig) -> list[Judgement]:
    """One Judgement per record, by ``config.rubric``."""
    if config.rubric == rubrics.PAIRWISE:
        return [v.judgement for v in await compare_pairs(llm, [pair_of(r) for r in records], config)]
    items = [Candidates(r.instruction, [r.output], r.input, r.lang) for r in records]
    return [j[0] for j in await score_candidates(llm, items, config)]


def judge_records(records: Iterable[Record], config: JudgeConfig, llm_config: LLMConfig,
                  out_dir: str | os.PathLike[str], *, fresh: bool = False, progress: bool = True) -> dict[str, Any]:
    """Judge ``records`` into ``out_dir`` and return the summary (as in ``stats.json``).

    ``llm_config`` is the judge's endpoint (resolve it with :func:`sftdata.judge.judge_llm_config`).
    Writes ``accepted.jsonl`` (every record, in input order, with ``meta.judge``; none is dropped:
    selection is ``sftdata select``), ``failures.jsonl``, ``requests.jsonl``, ``stats.json`` and, when
    ``config.gold`` is set, ``calibration.json``. Resumable: rerunning the same call continues where a
    killed run stopped; paid requests come from the cache. Raises ConfigError / DataError before
    anything is written, BudgetExhausted when the budget stops it.
    """
    from ..core.rounds import run_stage
    from ..core.rundir import RunDir
    from ..llm.client import make_llm
    from .stage import JudgeStage

    config.validate()
    llm_config.validate()
    records = list(records)[: config.limit] if config.limit else list(records)
    if config.rubric == rubrics.PAIRWISE:
        for record in records:
            pair_of(record)
    gold = _read_gold(config) if config.gold else None
    out = Path(out_dir)
    rundir = RunDir(out, fresh=fresh)
    stage = JudgeStage(config, records)
    digest = hashlib.sha256("\n".join(r.id for r in records).encode()).hexdigest()[:16]
    run_config = {"stage": "judge", "input_digest": digest, "judge": to_plain(config), "llm": llm_config.public()}
    summary: dict[str, Any] = {}
    if records:
        summary = run_stage(stage, rundir, make_llm(llm_config, rundir), run_config, progress=progress, desc="judge")
    else:
        rundir.write_config(run_config)
    if gold is not None:
        summary["calibration"] = calibrate(gold, config, llm_config, out, fresh=fresh, progress=progress)
    if llm_config.backend == "local" and not llm_config.model:
        summary["warning"] = WEAK_JUDGE
    return summary


def _read_gold(config: JudgeConfig) -> list[Record]:
    path = Path(config.gold or "")
    if not path.is_file():
        raise ConfigError(f"no such file: {path}", "--gold")
    return read_all([path])


def calibrate(gold: list[Record], config: JudgeConfig, llm_config: LLMConfig, out: Path, *, fresh: bool = False,
              progress: bool = True) -> dict[str, Any]:
    """Judge the gold records into ``out/gold`` and write ``out/calibration.json`` (agreement with the
    human labels); returns it."""
    from ..core.records import read_records
    from ..core.rundir import RunDir
    from .calibrate import agreement
    from .feedback import human_labels

    gold_dir = out / "gold"
    gold_config = JudgeConfig(**{**to_plain(config), "gold": None, "limit": None})
    judge_records(gold, gold_config, llm_config, gold_dir, fresh=fresh, progress=progress)
    judged = list(read_records(gold_dir / "accepted.jsonl"))
    beside = Path(config.gold or "").parent / "feedback.jsonl"
    result = agreement(gold, judged, config.rubric, human_labels(beside) if beside.is_file() else None)
    result["judge_model"] = llm_config.model or "embedded SmolLM2-135M-Instruct"
    if llm_config.backend == "local" and not llm_config.model:
        result["warning"] = WEAK_JUDGE
    RunDir(out).write_json("calibration.json", result)
    return result


def judge_files(in_paths: Sequence[str | os.PathLike[str]], config: JudgeConfig, llm_config: LLMConfig,
                out_dir: str | os.PathLike[str], *, fresh: bool = False, progress: bool = True) -> dict[str, Any]:
    """:func:`judge_records` over the records of ``in_paths`` (every bad line fails before any request)."""
    records = read_all(in_paths) if in_paths else []
    if not records and not config.gold:
        raise ConfigError("give at least one input file (or --gold FILE)", "INPUTS")
    return judge_records(records, config, llm_config, out_dir, fresh=fresh, progress=progress)


def run_in_pipeline(ctx: Any, config: JudgeConfig) -> Any:
    """The ``judge`` stage of ``sftdata run``: judge the previous stage's records with the judge's endpoint
    (the run's ``llm`` section with the ``judge_*`` settings on top)."""
    from ..core.stage import StageResult
    from .config import judge_llm_config

    llm_config = judge_llm_config(config, ctx.llm_config())
    if config.gold and not Path(config.gold).is_absolute():
        config = JudgeConfig(**{**to_plain(config), "gold": str(Path(config.gold).resolve())})
    summary = judge_files(ctx.data(), config, llm_config, ctx.out, progress=ctx.progress)
    if "warning" in summary:
        ctx.log(f"[judge] warning: {summary['warning']}")
    if "calibration" in summary:
        from .calibrate import format_agreement

        ctx.log(format_agreement(summary["calibration"]))
    return StageResult(outputs=[Path(ctx.out) / "accepted.jsonl"], summary=summary)
