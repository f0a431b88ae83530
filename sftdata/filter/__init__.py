"""The filter stage: an exact, fast ROUGE-L novelty index (correct for Chinese) and named rules.

    tokenize  rouge-score's tokenizer, token for token, and a CJK-aware one
    rouge     RougeIndex: Self-Instruct / Alpaca's ROUGE-L decisions without scoring most pairs
    config    FilterConfig (the stage's settings) and the rule names
    rules     the length, blacklist, format, language and instance rules
    stage     filter_records (streaming) and run_filter (files in, accepted/rejected out)

Submodules import lazily: importing ``sftdata.filter`` does not load numba or langdetect.
"""

from ..core.stage import StageSpec
from .config import FilterConfig
from .step import run

SPEC = StageSpec("filter", FilterConfig, run, help="ROUGE-L novelty, language, length, blacklist, format rules")
