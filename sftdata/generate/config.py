"""The generate stage's settings, the seed tasks it starts from, and the sampling each request uses."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, DataError
from ..core.paths import seeds_dir
from ..core.settings import click_path, setting
from ..filter.config import FilterConfig
from ..text.cjk import mostly_cjk

MODES = ("self-instruct", "alpaca")
LANGS = ("en", "zh")


@dataclass
class GenerateConfig:
    """Everything ``sftdata generate`` (and ``sftdata run``'s generate step) can set.

    ``temperature`` / ``top_p`` / ``max_tokens`` left as None take the original recipes' values:
    Self-Instruct samples instructions at temperature 0.7, top_p 0.5 and classifies and writes
    instances greedily; Alpaca samples its one-pass batches at temperature 1.0, top_p 1.0.
    """

    num_instructions: int = setting(100, resumable=True,
                                    help="Stop once this many new tasks have accepted instances.")
    mode: str = setting("self-instruct", choices=MODES,
                        help="Self-Instruct's four steps, or Alpaca's one pass (complete tasks per request).")
    seeds: list[str] = setting(list, by_pipeline=True, option="--seeds", split=False, path=True,
                               click_type=click_path(dir_okay=False),
                               help="Seed tasks (JSONL): our seed files, Self-Instruct's seed_tasks.jsonl as it "
                                    "is, or any Record JSONL. Repeatable. Default: the packaged seeds/<lang>.jsonl.")
    lang: str | None = setting(None, choices=LANGS,
                               help="Prompt and filter language. Default: the seeds' language.")
    instances_per_task: int = setting(5, help="Self-Instruct: at most K instances per task.")
    instructions_per_request: int = setting(8, help="Self-Instruct: new instructions asked for per request.")
    seed_tasks_in_prompt: int | None = setting(
        None, help="Seed instructions shown per request. Default: 6 (self-instruct), 3 (alpaca).")
    machine_tasks_in_prompt: int = setting(2, help="Self-Instruct: generated instructions shown per request "
                                                   "(seeds fill in while the pool is small).")
    alpaca_tasks_per_request: int = setting(20, help="Alpaca: complete tasks asked for per request.")
    temperature: float | None = setting(
        None, help="Sampling temperature for new instructions/tasks. Default: 0.7 (self-instruct), 1.0 (alpaca); "
                   "classification and instances are greedy, as in the original.")
    top_p: float | None = setting(None, help="Nucleus sampling. Default: 0.5 (self-instruct), 1.0 (alpaca).")
    max_tokens: int | None = setting(None, help="Token limit per reply. Default: 1024 (3072 for alpaca batches).")
    seed: int = setting(0, help="Seed for prompt sampling and request seeds.")
    round_size: int = setting(16, help="Generation requests sent together per round (a checkpoint follows "
                                       "every round).")
    stall_rounds: int = setting(10, cli=False, help="Stop when this many rounds in a row add no task.")
    rouge_threshold: float = setting(0.7, help="Reject an instruction whose ROUGE-L F against a kept one is "
                                               "above this.")
    rouge_tokenizer: str = setting("auto", choices=("auto", "rouge", "cjk"), help="ROUGE-L tokens: rouge-score's, one per CJK "
                                                                    "character, or by script (auto).")
    min_words: int = setting(3, help="Keep an instruction longer than this many words (Chinese: two characters "
                                     "count as a word).")
    max_words: int = setting(150, help="Longest instruction kept.")
    no_rule: list[str] = setting(list, metavar="NAME", help="Turn a filter rule off (rouge, length, blacklist, "
                                                            "format, language...). Repeatable or comma-separated.")

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"must be one of {', '.join(MODES)}, got {self.mode!r}", "--mode")
        if self.lang is not None and self.lang not in LANGS:
            raise ConfigError(f"must be one of {', '.join(LANGS)}, got {self.lang!r}", "--lang")
        for name in ("num_instructions", "instances_per_task", "instructions_per_request",
                     "alpaca_tasks_per_request", "round_size", "stall_rounds"):
            if getattr(self, name) < 1:
                raise ConfigError("must be at least 1", _option(name))
        if self.seed_tasks_in_prompt is not None and self.seed_tasks_in_prompt < 1:
            raise ConfigError("must be at least 1", "--seed-tasks-in-prompt")
        if self.machine_tasks_in_prompt < 0:
            raise ConfigError("must not be negative", "--machine-tasks-in-prompt")
        if self.temperature is not None and not 0.0 <= self.temperature <= 2.0:
            raise ConfigError("must be within [0, 2]", "--temperature")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ConfigError("must be within (0, 1]", "--top-p")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError("must be at least 1", "--max-tokens")
        self.filter_config(self.lang).validate()  # --rouge-*, --min/max-words, --no-rule names

    def filter_config(self, lang: str | None) -> FilterConfig:
        return FilterConfig(rouge_threshold=self.rouge_threshold, rouge_tokenizer=self.rouge_tokenizer, lang=lang,
                            min_words=self.min_words, max_words=self.max_words, disabled=frozenset(self.no_rule))

    # ------------------------------------------------------------ resolved values
    @property
    def prompt_seed_tasks(self) -> int:
        if self.seed_tasks_in_prompt is not None:
            return self.seed_tasks_in_prompt
        return 6 if self.mode == "self-instruct" else 3

    def sampling(self, kind: str) -> dict[str, Any]:
        """temperature, top_p, max_tokens for one kind of request."""
        if kind == "instructions":
            base = {"temperature": 0.7, "top_p": 0.5, "max_tokens": 1024}
            return self._user(base)
        if kind == "alpaca":
            return self._user({"temperature": 1.0, "top_p": 1.0, "max_tokens": 3072})
        if kind == "classify":  # a yes/no answer, greedy as the original
            return {"temperature": 0.0, "top_p": 1.0, "max_tokens": min(16, self.max_tokens or 16)}
        # instances: greedy as the original; --max-tokens caps the length
        return {"temperature": 0.0, "top_p": 1.0, "max_tokens": self.max_tokens or 1024}

    def _user(self, base: dict[str, Any]) -> dict[str, Any]:
        for key in ("temperature", "top_p", "max_tokens"):
            if getattr(self, key) is not None:
                base[key] = getattr(self, key)
        return base

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data["seed_tasks_in_prompt"] = self.prompt_seed_tasks
        return data


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def derive_seed(*parts: object) -> int:
    """A request's sampling seed from the run seed and what the request is for (stable across runs)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


# ---------------------------------------------------------------------- seeds

@dataclass(frozen=True)
class SeedTask:
    instruction: str
    instances: tuple[tuple[str, str], ...]  # (input, output)
    is_classification: bool | None = None


def looks_chinese(text: str) -> bool:
    return mostly_cjk(text)


def default_seed_file(lang: str) -> Path:
    return seeds_dir() / f"{lang}.jsonl"


def load_seeds(paths: list[str] | None, lang: str | None) -> tuple[list[SeedTask], str, list[str]]:
    """Seed tasks grouped by instruction, the run's language, and the seed files used.

    ``paths`` may hold our seed files, Self-Instruct's own ``seed_tasks.jsonl`` as it is, or any
    Record JSONL; records sharing an instruction are one task with several instances.
    """
    from ..core.records import read_all  # here: the config module stays cheap to import (`sftdata --help`)

    files = [str(p) for p in paths or []]
    if not files:
        path = default_seed_file(lang or "en")
        if not path.is_file():
            raise ConfigError(f"no packaged seed file {path}; pass seed tasks with --seeds PATH", "--seeds")
        files = [str(path)]
    records = read_all(files)
    tasks: dict[str, list] = {}
    flags: dict[str, bool | None] = {}
    for rec in records:
        key = rec.instruction.strip()
        tasks.setdefault(key, [])
        if rec.output.strip():
            tasks[key].append((rec.input, rec.output))
        if flags.get(key) is None:
            flags[key] = rec.is_classification
    if not tasks:
        raise DataError(files[0], None, "no seed tasks")
    seeds = [SeedTask(k, tuple(v), flags[k]) for k, v in tasks.items()]
    if lang is None:
        chinese = sum(looks_chinese(s.instruction) for s in seeds)
        lang = "zh" if chinese * 2 > len(seeds) else "en"
    return seeds, lang, files
