"""The export stage: alpaca / sharegpt / messages / prompt-completion JSONL, splits, dataset card.

    config  ExportConfig
    stage   export(records, out_dir, formats, ...) and the row writers
    card    the dataset card (README.md)
"""

from ..core.stage import StageSpec
from .config import ExportConfig
from .step import run

SPEC = StageSpec("export", ExportConfig, run, produces_data=False,
                 help="alpaca / sharegpt / messages / prompt-completion, splits, dataset card")
