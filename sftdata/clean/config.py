"""The clean stage's settings (CleanConfig) and the names of its rules; no heavy imports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..core.errors import ConfigError
from ..core.settings import setting

NORMALIZE_RULES = ("control-chars", "html", "nfkc", "whitespace", "code-fence")
REMOVE_RULES = ("empty", "refusal", "repeats-instruction", "repetition", "truncated", "length-outlier")
OPTIONAL_RULES = ("pii",)
RULES = NORMALIZE_RULES + REMOVE_RULES + OPTIONAL_RULES
GROUPS = {"normalize": NORMALIZE_RULES}
RULE_NAMES = ", ".join(list(GROUPS) + [r for r in RULES if r != "pii"])


@dataclass(frozen=True)
class CleanConfig:
    """What ``sftdata clean`` (and the ``clean:`` section of ``sftdata run``) can set."""

    no_rule: tuple[str, ...] = setting(tuple, metavar="NAME",
                                       help=f"Switch a rule off (repeatable or comma-separated): {RULE_NAMES}.")
    mask_pii: bool = setting(False, help="Replace e-mails, phone and ID numbers with [EMAIL], [PHONE], "
                                         "[ID_NUMBER].")
    outlier_z: float = setting(3.5, help="Robust z-score (median/MAD of log output length, per language and task "
                                         "type) above which an output is too long.")
    outlier_short: bool = setting(False, help="Also remove unusually short outputs (off: short answers, labels "
                                              "and rewrites are usually right).")
    outlier_min_group: int = setting(10, cli=False, config=False,
                                     help="Fewest records of a language and task type scored for outliers.")

    def __post_init__(self) -> None:
        object.__setattr__(self, "no_rule", tuple(self.no_rule))
        object.__setattr__(self, "outlier_z", float(self.outlier_z))

    @classmethod
    def from_options(cls, no_rule: Iterable[str] = (), mask_pii: bool = False, outlier_z: float = 3.5,
                     outlier_min_group: int = 10, outlier_short: bool = False) -> CleanConfig:
        """A validated config; ``no_rule`` entries may be comma-separated."""
        names = tuple(v.strip() for value in no_rule for v in value.split(",") if v.strip())
        return cls(names, mask_pii, outlier_z, outlier_short, outlier_min_group).validate()

    @property
    def disabled(self) -> frozenset[str]:
        """The rules switched off, groups expanded."""
        disabled: set[str] = set()
        for name in (n.lower() for n in self.no_rule):
            disabled.update(GROUPS.get(name, (name,)))
        return frozenset(disabled)

    def validate(self) -> CleanConfig:
        for name in (n.strip().lower() for n in self.no_rule):
            if name == "pii":
                raise ConfigError("'pii' is off unless --mask-pii is given", "--no-rule")
            if name not in GROUPS and name not in RULES:
                raise ConfigError(f"unknown rule '{name}' (rules: {RULE_NAMES})", "--no-rule")
        if not self.outlier_z > 0:
            raise ConfigError(f"must be above 0, got {self.outlier_z}", "--outlier-z")
        if self.outlier_min_group < 3:
            raise ConfigError("an outlier group needs at least 3 records", "outlier_min_group")
        return self

    def on(self, rule: str) -> bool:
        return self.mask_pii if rule == "pii" else rule not in self.disabled

    def enabled_rules(self) -> list[str]:
        return [r for r in RULES if self.on(r)]
