"""Text normalization and PII masking for the clean stage: pure functions on strings.

Each function returns its input unchanged when it has nothing to do, so the caller can count
changes by comparing. "Where it does not change meaning" is the rule throughout: superscripts,
circled numbers, fractions and math letters keep their compatibility forms (x² is not x2), full-width
punctuation stays in Chinese text, indentation and tab-separated data keep their whitespace, and a
task about code or markup keeps its tags and fences.
"""

from __future__ import annotations

import html
import re
import unicodedata

from ..text.cjk import CJK_CLASS, has_cjk

__all__ = ["CJK_CLASS", "has_cjk", "is_code_task", "strip_control", "strip_html", "nfkc", "collapse_whitespace",
           "CODE_LINE", "looks_like_code", "unwrap_code_fence", "mask_pii"]


# ---------------------------------------------------------------- code tasks

# (?<![A-Za-z]) rather than \b: in "在Python中" the CJK characters are word characters too
_CODE_WORDS = re.compile(
    r"(?<![A-Za-z])(?:code|coding|program(?:s|ming)?|function|script|python|java(?:script)?|typescript|c\+\+|c#|golang|"
    r"rust|sql|query|regex|regular expression|html|css|xml|json|yaml|markdown|latex|bash|shell|command|"
    r"api|algorithm|class|method|compile[rd]?|debug|snippet|syntax|tags?|markup|escape[ds]?)(?![A-Za-z])"
    r"|代码|程序|编程|函数|脚本|正则|算法|标签|网页|语法|命令|接口|编码|转义",
    re.IGNORECASE)
_CODE_SHAPES = re.compile(r"```|^\s*(?:def |class |import |#include|function\s*\w*\s*\(|public |SELECT )|</\w+>|[{};]\s*$",
                          re.MULTILINE)


def is_code_task(instruction: str, input: str = "") -> bool:
    """The task is about code or markup: its tags, fences and spacing are content, not noise."""
    return bool(_CODE_WORDS.search(instruction) or _CODE_WORDS.search(input) or _CODE_SHAPES.search(input))


# ---------------------------------------------------------------- control characters

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# zero-width space, word joiner, BOM, soft hyphen, Mongolian vowel separator. ZWJ/ZWNJ stay: they
# build emoji sequences and are spelling in Persian and Indic scripts.
_ZERO_WIDTH = re.compile("[\u200b\u2060\ufeff\u00ad\u180e]")


def strip_control(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    return _ZERO_WIDTH.sub("", _CONTROL.sub("", text))


# ---------------------------------------------------------------- HTML

_BLOCK_TAGS = "p|div|br|li|ul|ol|h[1-6]|tr|table|thead|tbody|blockquote|pre|section|article|header|footer|hr|dl|dt|dd"
_INLINE_TAGS = ("span|b|i|u|s|em|strong|a|font|code|sup|sub|small|big|mark|abbr|cite|img|td|th|label|strike|"
                "del|ins|center|tt|kbd|var|q")
# a tag opens with "<name" or "</name" (no space: "a < b" is a comparison) and has only attributes
_ATTRS = r"""(?:\s+[\w:-]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s<>"']+))?)*\s*/?>"""
_BLOCK = re.compile(rf"</?(?:{_BLOCK_TAGS}){_ATTRS}", re.IGNORECASE)
_INLINE = re.compile(rf"</?(?:{_INLINE_TAGS}){_ATTRS}", re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# only complete entities with their semicolon: "AT&T" and "?a=1&copy=2" stay as they are
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#\d{1,7}|#[xX][0-9A-Fa-f]{1,6});")


def strip_html(text: str) -> str:
    if "<" not in text and "&" not in text:
        return text
    text = _COMMENT.sub("", text)
    text = _BLOCK.sub("\n", text)
    text = _INLINE.sub("", text)
    return _ENTITY.sub(lambda m: html.unescape(m.group(0)).replace("\u00a0", " "), text)


# ---------------------------------------------------------------- NFKC

# compatibility forms whose plain letters would change the meaning
_KEEP_DECOMPOSITIONS = ("<super>", "<sub>", "<circle>", "<fraction>", "<font>")
# full-width ASCII punctuation (，！？：；（）…) is the right punctuation in Chinese text
_FULLWIDTH_PUNCT = frozenset(chr(c) for c in [*range(0xFF01, 0xFF10), *range(0xFF1A, 0xFF21),
                                              *range(0xFF3B, 0xFF41), *range(0xFF5B, 0xFF61), 0x2026])


def _keep_char(ch: str, chinese: bool) -> bool:
    if chinese and ch in _FULLWIDTH_PUNCT:
        return True
    if "\u3130" <= ch <= "\u318f" or "\uffa0" <= ch <= "\uffdc":  # Hangul compatibility jamo stay legible
        return True
    return unicodedata.decomposition(ch).startswith(_KEEP_DECOMPOSITIONS)


def nfkc(text: str, chinese: bool | None = None) -> str:
    """NFKC, except the characters where it would change meaning (see the module docstring).

    ``chinese``: keep full-width punctuation; None decides from the text (any CJK character).
    """
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text
    if chinese is None:
        chinese = has_cjk(text)
    # most characters are already NFKC: keep them without asking _keep_char
    out = [ch if unicodedata.is_normalized("NFKC", ch) or _keep_char(ch, chinese)
           else unicodedata.normalize("NFKC", ch) for ch in text]
    return unicodedata.normalize("NFC", "".join(out))


# ---------------------------------------------------------------- whitespace

_FENCE_LINE = re.compile(r"^\s*(```|~~~)")
_INNER_SPACES = re.compile(r"(?<=\S) {2,}")


def collapse_whitespace(text: str, code: bool = False) -> str:
    """Collapse runs of spaces between words, strip line ends, keep at most one blank line, trim.

    Indentation, tabs (tab-separated data) and everything inside code fences stay; in code (a code
    task, or a reply that looks like code) the spaces inside lines and the blank lines stay too:
    string literals, alignment, PEP 8's two blank lines.
    """
    lines: list[str] = []
    in_fence, blanks = False, 0
    for line in text.split("\n"):
        if _FENCE_LINE.match(line):
            in_fence, blanks = not in_fence, 0
            lines.append(line.rstrip())
        elif in_fence:
            lines.append(line)
        elif not line.strip():
            blanks += 1
            if code or blanks == 1:
                lines.append("")
        else:
            blanks = 0
            line = line.rstrip()
            lines.append(line if code else _INNER_SPACES.sub(" ", line))
    return "\n".join(lines).strip()


CODE_LINE = re.compile(r"^\s*(?:def |class |import |from \S+ import |print\(|return\b|#include|function\b|"
                        r"(?:var|let|const) \w+\s*=|public |private |SELECT |for \w+ in |if .*:$|.*[{;]$)", re.MULTILINE)


def looks_like_code(text: str) -> bool:
    """Two or more lines that read as source code (an unfenced program in the reply)."""
    return len(CODE_LINE.findall(text)) >= 2


# ---------------------------------------------------------------- code fence

_WHOLE_FENCE = re.compile(r"\A\s*```[ \t]*([\w+#.-]*)[ \t]*\n(.*?)\n?[ \t]*```\s*\Z", re.DOTALL)
_PLAIN_FENCE_LANGS = {"", "text", "txt", "plaintext", "plain", "markdown", "md", "output"}


def unwrap_code_fence(text: str, code_task: bool) -> str:
    """A reply that is entirely one fenced block with no (or a plain-text) language, in a task that is
    not about code: the fence is formatting noise. A ```python block stays, whatever the task."""
    if code_task or "```" not in text:
        return text
    match = _WHOLE_FENCE.match(text)
    if not match or "```" in match.group(2) or match.group(1).lower() not in _PLAIN_FENCE_LANGS:
        return text
    return match.group(2).strip("\n")


# ---------------------------------------------------------------- PII

_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![\w-])")
# Chinese resident ID (6-digit area, birth date, 3-digit sequence, check digit) and US SSN. The check
# digit is not verified: generated data holds realistic fakes, and they are ID-like all the same.
_ID_NUMBER = re.compile(
    r"(?<![\dA-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\dA-Za-z])"
    r"|(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
_PHONE = re.compile(
    r"(?<![\d+])(?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)"                      # CN mobile
    r"|(?<![\d-])0\d{2,3}-\d{7,8}(?![\d-])"                                              # CN landline
    r"|(?<![\w+-])(?:\+?1[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-])"  # NANP
    r"|(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w-])")                        # international


_PII_HINT = re.compile(r"[\d@]")


def _phone(match: re.Match) -> str:
    digits = sum(c.isdigit() for c in match.group(0))
    return "[PHONE]" if 8 <= digits <= 15 else match.group(0)


def mask_pii(text: str) -> tuple[str, dict[str, int]]:
    """Replace e-mail addresses, ID numbers and phone numbers with [EMAIL], [ID_NUMBER], [PHONE]."""
    counts: dict[str, int] = {}
    if not _PII_HINT.search(text):
        return text, counts
    for label, pattern, repl in (("EMAIL", _EMAIL, "[EMAIL]"), ("ID_NUMBER", _ID_NUMBER, "[ID_NUMBER]"),
                                 ("PHONE", _PHONE, _phone)):
        before = text
        text, n = pattern.subn(repl, text)
        if label == "PHONE":  # _phone leaves too-short matches alone: count only real replacements
            n = text.count("[PHONE]") - before.count("[PHONE]")
        if n:
            counts[label] = n
    return text, counts
