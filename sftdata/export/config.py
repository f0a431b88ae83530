"""The export stage's settings (ExportConfig); no heavy imports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..core import formats
from ..core.errors import ConfigError
from ..core.settings import setting

# the shapes of preference pairs export.preference writes (named here, where the pairs stage's settings
# can read them without importing the writers)
PREFERENCE_FORMATS = ("trl", "trl-conversational", "llamafactory-alpaca", "llamafactory-sharegpt")


@dataclass
class ExportConfig:
    """What ``sftdata export`` (and the ``export:`` section of ``sftdata run``) can set."""

    formats: list[str] = setting(lambda: ["alpaca", "sharegpt", "messages"], option="--format",
                                 cli_default=("alpaca",),
                                 help=f"Output format, repeatable or comma-separated: {', '.join(formats.names())}.")
    split: list[float] = setting(lambda: [0.9, 0.05, 0.05],
                                 help="train,validation,test ratios summing to 1. A split with ratio 0 is not "
                                      "written.")
    system: str | None = setting(None, help="System prompt for records that have none of their own.")
    hf: bool = setting(False, help="Also save a datasets DatasetDict (hf/<format>, for load_from_disk) and Parquet "
                                   "files (parquet/<format>/<split>.parquet).")
    license: str | None = setting(None, help="License of the dataset card: an identifier the Hugging Face Hub "
                                             "accepts (apache-2.0, cc-by-4.0, mit, ...) or 'other' with "
                                             "--license-name.")
    license_name: str | None = setting(None, help="Name of a license not in the Hub's list (with --license other), "
                                                  "e.g. my-data-license.")
    push_to_hub: str | None = setting(None, config=False, hashed=False, metavar="OWNER/NAME",
                                      help="Also publish the export as this Hugging Face Hub dataset (one "
                                           "commit: the card, dataset_info.json and the chosen formats' files). "
                                           "Token from HF_TOKEN or `hf auth login`; HF_ENDPOINT is honoured.")
    private: bool = setting(False, config=False, hashed=False,
                            help="With --push-to-hub: create the dataset repo private.")
    seed: int = setting(0, config=False, help="Seed of the split (same seed, same split; `sftdata run`: its seed).")
    name: str | None = setting(None, config=False, help="Dataset name in dataset_info.json and the card. "
                                                        "Default: the --out folder name (`sftdata run`: the run's).")

    def validate(self) -> None:
        """Bad formats, splits or licenses fail when the config loads, not after hours of generation."""
        from .license import check_license

        parse_formats(self.formats)
        parse_split(self.split)
        check_license(self.license, self.license_name)
        if self.push_to_hub is not None:
            from .hub import check_repo_id

            check_repo_id(self.push_to_hub)


def parse_formats(values: Iterable[str]) -> list[str]:
    """``--format`` values, each possibly comma-separated, in first-seen order without repeats."""
    chosen: list[str] = []
    for value in values:
        for name in (v.strip().lower() for v in value.split(",")):
            if not name:
                continue
            formats.get(name)  # an unknown name is an error naming the known ones
            if name not in chosen:
                chosen.append(name)
    if not chosen:
        raise ConfigError("give at least one format", "--format")
    return chosen


def parse_split(text: str | Sequence[float]) -> tuple[float, float, float]:
    """``"0.9,0.05,0.05"`` -> train, validation, test fractions (non-negative, summing to 1)."""
    if not isinstance(text, str) and any(isinstance(v, str) for v in text):
        text = ",".join(str(v) for v in text)  # from a repeated or comma-separated --split
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",")]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ConfigError(f"'{text}' is not three comma-separated numbers, e.g. 0.9,0.05,0.05",
                              "--split") from None
    else:
        values = [float(v) for v in text]
    if len(values) != 3:
        raise ConfigError(f"expected 3 ratios (train,validation,test), got {len(values)}", "--split")
    if any(v != v or v < 0 for v in values):  # v != v: NaN
        raise ConfigError("ratios must be non-negative numbers", "--split")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ConfigError(f"ratios must sum to 1, got {sum(values):g}", "--split")
    if values[0] == 0:
        raise ConfigError("the train ratio must be above 0", "--split")
    return values[0], values[1], values[2]
