"""The clean stage: normalize text; drop refusals, truncations, repetition, length outliers; mask PII.

    config  CleanConfig and the rule names
    stage   clean_records (streaming) and run_clean (files in, accepted/rejected out)
    rules   the removal detectors; text: the normalization rules
"""

from ..core.stage import StageSpec
from .config import CleanConfig
from .step import run

SPEC = StageSpec("clean", CleanConfig, run, help="normalize text; drop refusals, truncations, repetition, outliers")
