"""The report stage's settings: none yet (the report reads the whole run directory)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReportConfig:
    """The ``report:`` section of ``sftdata run`` (``report: {}``, or ``enabled: false``)."""
