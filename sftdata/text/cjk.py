"""The one CJK character class, and the small predicates built on it.

Every stage that asks "is this Chinese / Japanese / Korean?" asks here, so a range fixed once is fixed
everywhere (there used to be six detectors with three different ranges; the narrowest stopped at
U+9FA5 or U+9FFF and missed the extension blocks, where rare characters and names live).

``HAN_CLASS`` covers the CJK Unified Ideographs (U+4E00-U+9FFF, through the characters added in
Unicode 14), extension A (U+3400-U+4DBF), extensions B-F and I with the compatibility supplement
(U+20000-U+2FA1F), extensions G-H (U+30000-U+3134F) and the compatibility ideographs (U+F900-U+FAFF). ``CJK_CLASS``
adds the iteration marks, kana and hangul. Both are the inside of a regex character class.
"""

from __future__ import annotations

import re
from functools import cache

HAN_CLASS = (
    "\u3400-\u4dbf"  # extension A
    "\u4e00-\u9fff"  # unified ideographs
    "\uf900-\ufaff"  # compatibility ideographs
    "\U00020000-\U0002fa1f"  # extensions B-F and I, compatibility ideographs supplement
    "\U00030000-\U0003134f"  # extensions G, H
)
KANA_CLASS = "\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9d"
HANGUL_CLASS = "\u1100-\u11ff\u3131-\u318e\uac00-\ud7a3"  # jamo, compatibility jamo, syllables
CJK_CLASS = (
    "\u3005\u3007\u3021-\u3029\u3038-\u303b"  # 々 〇 Suzhou numerals, 〸-〻
    + KANA_CLASS + HAN_CLASS + HANGUL_CLASS
)
CJK_LANGS = ("zh", "ja", "ko")

CJK_SHARE = 0.3  # of the visible characters: text at least this CJK is measured in characters

# CJK_CHAR, HAN_CHAR, KANA_CHAR, HANGUL_CHAR: one character of the class, compiled on first use (the
# Unicode ranges take milliseconds to compile, and `sftdata --help` imports this module through the configs)
_PATTERNS = {"CJK_CHAR": CJK_CLASS, "HAN_CHAR": HAN_CLASS, "KANA_CHAR": KANA_CLASS, "HANGUL_CHAR": HANGUL_CLASS}


@cache
def pattern(name: str) -> re.Pattern[str]:
    """The compiled character class ``name`` (a key of ``_PATTERNS``)."""
    return re.compile(f"[{_PATTERNS[name]}]")


def __getattr__(name: str) -> re.Pattern[str]:
    if name in _PATTERNS:
        return pattern(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def has_cjk(text: str) -> bool:
    return pattern("CJK_CHAR").search(text) is not None


def cjk_count(text: str) -> int:
    return len(pattern("CJK_CHAR").findall(text))


def is_cjk_char(char: str) -> bool:
    return len(char) == 1 and pattern("CJK_CHAR").match(char) is not None


def mostly_cjk(text: str, share: float = CJK_SHARE) -> bool:
    """At least ``share`` of the non-space characters are CJK (False for blank text)."""
    visible = [c for c in text if not c.isspace()]
    match = pattern("CJK_CHAR").match
    return bool(visible) and sum(1 for c in visible if match(c)) / len(visible) >= share


def is_cjk_lang(lang: str | None) -> bool:
    return (lang or "").split("-")[0] in CJK_LANGS
