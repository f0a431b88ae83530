"""The filter stage's rules, applied to each new record: length, blacklist, format and language of
its instruction, and the instance rules on an answer written in this stage.

ROUGE-L is not among them here: the stage keeps its own index over the input set and everything
it accepted, and checks it at commit time, in work order. The expected language of a new record is
its parent's (or --lang); languages without prompts of their own get the English ones.
"""

from __future__ import annotations

from typing import Any

from ..core.records import Record
from ..filter.rules import check_instance, check_instruction, detect_lang
from .config import AugmentConfig


class InstructionFilter:
    def __init__(self, config: AugmentConfig) -> None:
        self.config = config
        self.rules = config.filter_config()

    def lang_of(self, record: Record) -> str:
        """The language of a parent's evolutions: --lang, else its declared language, else the detected one."""
        if self.config.lang != "auto":
            return self.config.lang
        lang = (record.lang or detect_lang(record.instruction)).split("-")[0].lower()
        return "en" if lang in ("", "unknown") else lang

    def check(self, instruction: str, lang: str) -> tuple[str, dict[str, Any]] | None:
        found = check_instruction(instruction, self.rules, expected_lang=lang)
        return (found[0], dict(found[1] or {})) if found is not None else None

    def check_answer(self, record: Record) -> tuple[str, dict[str, Any]] | None:
        found = check_instance(record, self.rules)
        return (found[0], dict(found[1] or {})) if found is not None else None

    @property
    def rouge(self) -> bool:
        return "rouge" not in self.config.no_rule
