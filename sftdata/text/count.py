"""Text length as the papers count it: words for space-separated languages, characters for CJK."""

from __future__ import annotations

import re

from .cjk import has_cjk, is_cjk_lang, mostly_cjk

_SPACE = re.compile(r"\s+")


def text_length(text: str, lang: str | None = None) -> int:
    """Words for English and other space-separated languages, characters for Chinese/Japanese/Korean.

    With ``lang`` unknown, text that is mostly CJK characters is measured in characters.
    """
    if lang is None:
        lang = "zh" if mostly_cjk(text) else "en"
    if is_cjk_lang(lang):
        return sum(1 for c in text if not c.isspace())
    return len(text.split())


def quick_length(text: str, cjk: bool | None = None) -> int:
    """:func:`text_length` with the script guessed from the first characters (unless ``cjk`` is given):
    cheap enough to call on every reply of a large file."""
    if cjk is None:
        cjk = has_cjk(text[:200])
    return len(_SPACE.sub("", text)) if cjk else len(text.split())
