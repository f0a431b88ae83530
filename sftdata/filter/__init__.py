"""The filter stage: an exact, fast ROUGE-L novelty index (correct for Chinese) and named rules.

    tokenize  rouge-score's tokenizer, token for token, and a CJK-aware one
    rouge     RougeIndex: Self-Instruct / Alpaca's ROUGE-L decisions without scoring most pairs
    rules     FilterConfig and the length, blacklist, format, language and instance rules
    stage     filter_records (streaming) and run_filter (files in, accepted/rejected out)

Submodules import lazily: importing ``sftdata.filter`` does not load numba or langdetect.
"""
