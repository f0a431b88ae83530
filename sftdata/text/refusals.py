"""Refusals, at the three strengths the stages need, side by side.

Why three and not one: each stage asks a different question, and the price of a wrong answer differs.

- **generate** (:func:`is_refusal`, the weakest test, the widest net): parsing a list of new tasks, a
  paragraph that *opens* like a refusal ("I'm sorry, ...", "I can't ...", "抱歉") is never an item, at
  any length. A false hit costs one candidate among many the next round replaces.
- **augment** (:func:`is_apology`, the Evol-Instruct paper's rule as published): an evolved answer is
  eliminated when it says "sorry" anywhere in under 80 words, or 抱歉 / 对不起 / 很遗憾 / 不好意思 in
  under 120 characters. Kept as the paper states it, so runs compare with the paper's.
- **clean** (:func:`refused_answer`, the strictest test): a finished record is removed only when its
  reply opens with an apology *that goes on to decline* ("I'm sorry to hear that" is not a refusal),
  is short (80 words / 150 CJK characters), and the task does not itself ask for such text
  (translating an apology); or when it opens with an AI disclaimer ("As an AI language model").
  A false hit here throws away a finished record, so it must be sure.
"""

from __future__ import annotations

import re
from typing import Any

from .cjk import has_cjk
from .count import quick_length, text_length

# ---------------------------------------------------------------- generate: a reply paragraph that declines

_REFUSAL = re.compile(
    r"^[ \t>*_#]*(?:i'm sorry|i am sorry|sorry,|i apologi[sz]e|i can't|i cannot|i can not|i'm unable|i am unable|"
    r"i'm not able|as an ai|unfortunately,? i|抱歉|对不起|很抱歉|我无法|我不能|作为一个?(?:ai|人工智能))", re.I)


def is_refusal(text: str) -> bool:
    """"I'm sorry, but I can't..." / "抱歉，我无法...": a paragraph that declines, not an item (generate)."""
    return bool(_REFUSAL.match(text.strip()))


# ---------------------------------------------------------------- augment: Evol-Instruct's apology

_SORRY_EN = re.compile(r"\bsorry\b|\bi apologi[sz]e\b", re.I)
_SORRY_ZH = re.compile(r"抱歉|对不起|很遗憾|不好意思")
APOLOGY_MAX_WORDS = 80
APOLOGY_MAX_CHARS_ZH = 120


def is_apology(answer: str) -> bool:
    """A short apology: "sorry" in under 80 words, or 抱歉 / 对不起... in under 120 characters."""
    if _SORRY_EN.search(answer) and len(answer.split()) < APOLOGY_MAX_WORDS:
        return True
    return bool(_SORRY_ZH.search(answer)) and text_length(answer, "zh") < APOLOGY_MAX_CHARS_ZH


# ---------------------------------------------------------------- clean: a finished reply that refuses

_OPENER = (r"(?:(?:i'?m|i am) (?:really |very |so |truly )?(?:sorry|afraid)|sorry|unfortunately|apologies|"
           r"my apologies|i apologi[sz]e)[,.!]?\s+(?:but\s+)?(?:as an ai[^,.]{0,40},\s*)?")
_CANT = (r"i (?:(?:can(?:no|')t|can not|am unable to|'m unable to|am not able to|'m not able to|won't be able to|"
         r"will not be able to)\s+(?:\w+\s+){0,2}?(?:help(?! but)|assist|provide|fulfill|comply|complete|answer|"
         r"generate|create|write|give|offer|access|browse|perform|engage|support|share|predict|translate|"
         r"respond|process|discuss|do that|do this)\b"
         r"|do(?: not|n't) have (?:access|the ability|the capability|personal|real-time)\b)")
_ZH_CANT = (r"我(?:目前|暂时|并)?(?:无法|不能|没办法|没有办法|不可以|做不到)(?:为你|为您|帮你|帮您|向你|向您)?"
            r"(?:提供|回答|完成|帮助|协助|满足|生成|创作|处理|执行|给出|访问|预测|翻译|回复|讨论|理解)")
# an apology alone is not a refusal ("I'm sorry to hear that", "Sorry, I won't be able to attend" in a
# letter): the opener must go on to say that the assistant cannot do the task
_REFUSALS = [re.compile(p, re.IGNORECASE) for p in (
    _OPENER + _CANT,
    _OPENER + r"i (?:do(?:n't| not) (?:understand|know)\b|'m not sure what you mean)",
    _CANT,
    r"(?:很|非常|十分|真的)?(?:抱歉|对不起|不好意思)[，,。！!]?\s*(?:但是?|不过)?[，,]?\s*(?:作为[^，,。]{1,12}[，,]\s*)?" + _ZH_CANT,
    _ZH_CANT,
)]
_DISCLAIMERS = [re.compile(p, re.IGNORECASE) for p in (
    r"\bas an ai(?: language model| assistant| model| chatbot)?\b",
    r"\bas a (?:large )?language model\b",
    r"\bi(?:'m| am) (?:just |only )?(?:an ai|a (?:large )?language model)\b",
    r"作为(?:一个|一名|一款)?(?:AI|人工智能)(?:语言模型|助手|模型|程序)?",
    r"作为(?:一个|一款)?(?:大型)?语言模型",
    r"我(?:只)?是(?:一个|一款)?(?:AI|人工智能)(?:语言模型|助手)|我(?:只)?是(?:一个|一款)?(?:大型)?语言模型",
)]
_MENTIONS_AI = re.compile(r"(?<![A-Za-z])AI(?![A-Za-z])|artificial intelligence|language model|chatbot|robot|assistant|"
                          r"人工智能|语言模型|机器人|助手|智能", re.IGNORECASE)
_LEADING_NOISE = re.compile(r"^[\s\"'“‘「*#>_-]+")
REFUSAL_MAX_WORDS = 80  # Evol-Instruct's elimination: "sorry" and under 80 words
REFUSAL_MAX_CJK = 150
DISCLAIMER_WINDOW = 200  # characters at the start of the reply


def _first_sentence(text: str) -> str:
    head = text[:DISCLAIMER_WINDOW]
    match = re.search(r"[.!?。！？\n]", head[10:])
    return head if not match else head[: 10 + match.end()]


def refused_answer(output: str, prompt: str) -> dict[str, Any] | None:
    """Clean's strength: ``output`` is a refusal (short, opening with one) or opens with an AI disclaimer.

    Left alone: a task whose own text (``prompt``) holds the phrase (translating or rewriting an
    apology), a story about an AI when the task asks for one, and long answers that start with a
    brief apology.
    """
    head = _LEADING_NOISE.sub("", output[:DISCLAIMER_WINDOW * 2])
    match = next((m for m in (p.match(head) for p in _REFUSALS) if m), None)
    if match and not any(p.search(prompt) for p in _REFUSALS):
        limit = REFUSAL_MAX_CJK if has_cjk(head[:50]) else REFUSAL_MAX_WORDS
        if quick_length(output) <= limit:
            return {"kind": "refusal", "match": match.group(0)}
    first = _first_sentence(head)
    match = next((m for m in (p.search(first) for p in _DISCLAIMERS) if m), None)
    if match and not _MENTIONS_AI.search(prompt) and not any(p.search(prompt) for p in _DISCLAIMERS):
        return {"kind": "disclaimer", "match": match.group(0)}
    return None
