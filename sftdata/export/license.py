"""The dataset card's license: the identifiers the Hugging Face Hub accepts, and the check of ``--license``.

Apart from the card (``export/card.py``) so that checking an export config (``sftdata run --dry-run``)
does not import what writing a card needs.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from ..core.errors import ConfigError


@lru_cache(maxsize=1)
def hub_licenses() -> frozenset[str]:
    """The license identifiers the Hugging Face Hub accepts (sftdata/data/hub_licenses.txt, from its docs)."""
    text = (Path(__file__).resolve().parents[1] / "data" / "hub_licenses.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_license(license: str | None, license_name: str | None = None) -> str:
    """A license identifier the Hub accepts (apache-2.0, cc-by-4.0, mit, ..., ``other``); 'unknown' when
    not given. ``other`` needs ``license_name`` (the Hub's ``license_name``: lowercase letters, digits,
    dashes), and a name goes with ``other`` only: anything else is a ConfigError naming the option."""
    if license is None:
        if license_name is not None:
            raise ConfigError("--license-name goes with --license other", "--license-name")
        return "unknown"
    value = license.strip().lower()
    if value not in hub_licenses():
        import difflib

        near = difflib.get_close_matches(value, sorted(hub_licenses()), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(near)}?)" if near else " such as apache-2.0, cc-by-4.0, mit"
        raise ConfigError(f"'{license}' is not a license identifier the Hugging Face Hub accepts{hint}; "
                          "for any other license use --license other --license-name NAME", "--license")
    if value == "other":
        if not license_name:
            raise ConfigError("--license other needs --license-name NAME (e.g. my-data-license)", "--license-name")
        if not re.fullmatch(r"[a-z0-9]+(?:[-.][a-z0-9]+)*", license_name):
            raise ConfigError(f"'{license_name}' is not a license name: lowercase letters, digits and dashes, "
                              "e.g. my-data-license", "--license-name")
    elif license_name is not None:
        raise ConfigError(f"--license-name goes with --license other, not '{value}'", "--license-name")
    return value
