"""Tokenizers for ROUGE-L: rouge-score's own, and a CJK-aware one.

``tokenize_rouge`` reproduces ``rouge_score.tokenize.tokenize`` exactly: full Unicode ``str.lower()``
first (so the Kelvin sign becomes ``k`` and ``İ`` becomes ``i`` plus a combining dot, which then
separates tokens), then every run of characters outside ``[a-z0-9]`` is a separator, and with
``stem=True`` only tokens longer than 3 characters go through NLTK's Porter stemmer. It keeps only
ASCII letters and digits, so Chinese text has no tokens at all and any two Chinese sentences
score 0: the Self-Instruct / Alpaca filter silently never fires on Chinese.

``tokenize_cjk`` makes each CJK character (Han, kana, hangul) one token and tokenizes everything
else exactly as rouge-score does (no stemming). On text without CJK characters it returns the same
tokens as ``tokenize_rouge``; that is what lets ``"auto"`` pick per text without making two texts
incomparable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from ..text.cjk import CJK_CHAR, CJK_CLASS, cjk_count, has_cjk

__all__ = ["tokenize_rouge", "tokenize_cjk", "get_tokenizer", "has_cjk", "cjk_count", "TOKENIZERS",
           "CJK_CLASS"]

# rouge-score: NON_ALPHANUM_RE.sub(" ", text) then SPACES_RE.split(text) then VALID_TOKEN_RE filter,
# which keeps exactly the maximal runs of [a-z0-9]; findall gives the same list in one pass.
_ROUGE_TOKEN = re.compile(r"[a-z0-9]+")
_VALID_TOKEN = re.compile(r"^[a-z0-9]+$")

# the one CJK class (Han with its extensions and compatibility ideographs, kana, hangul): sftdata.text.cjk
_CJK_CHAR = CJK_CHAR
_CJK_TOKEN = re.compile(f"[a-z0-9]+|[{CJK_CLASS}]")


@lru_cache(maxsize=1)
def _stemmer():
    # rouge-score's DefaultTokenizer(use_stemmer=True) uses this exact stemmer (NLTK_EXTENSIONS mode)
    from nltk.stem import porter

    return porter.PorterStemmer()


def tokenize_rouge(text: str, stem: bool = False) -> list[str]:
    """rouge-score's default tokenizer, token for token (``RougeScorer`` default, no stemming)."""
    tokens = _ROUGE_TOKEN.findall(text.lower())
    if stem:
        stemmer = _stemmer()
        tokens = [stemmer.stem(tok) if len(tok) > 3 else tok for tok in tokens]
        tokens = [tok for tok in tokens if _VALID_TOKEN.match(tok)]
    return tokens


def tokenize_cjk(text: str) -> list[str]:
    """One token per CJK character; runs of ``[a-z0-9]`` (after ``lower()``) as rouge-score does."""
    return _CJK_TOKEN.findall(text.lower())


def tokenize_auto(text: str) -> list[str]:
    """rouge-score's tokenizer for text without CJK characters, the CJK-aware one otherwise.

    Both give identical tokens on text without CJK characters, so texts tokenized either way stay
    comparable; the choice only skips the slower pattern where it cannot matter.
    """
    return tokenize_cjk(text) if _CJK_CHAR.search(text) else _ROUGE_TOKEN.findall(text.lower())


TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "rouge": tokenize_rouge,
    "cjk": tokenize_cjk,
    "auto": tokenize_auto,
}


def get_tokenizer(name: str) -> Callable[[str], list[str]]:
    """``"rouge"`` (rouge-score's, exactly), ``"cjk"`` or ``"auto"`` (per text by script)."""
    try:
        return TOKENIZERS[name]
    except KeyError:
        raise ValueError(f"unknown tokenizer {name!r} (choose from {', '.join(TOKENIZERS)})") from None
