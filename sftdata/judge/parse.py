"""Reading judge replies as they really come.

Scores: "Score: 8/10", "8 out of 10", "**Rating: 4**", "[[7]]", JSON with any key order (also inside a
code fence), "评分：7分", "七分", "得分为8", the verdict before or after the reasoning. Reasoning models'
``<think>`` blocks are dropped first (a number inside them is a thought, not a verdict). Every reader
returns None when the reply holds no verdict: the caller retries or records the raw text, and
never invents a default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

_THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.S | re.I)
_THINK_OPEN = re.compile(r"<(think|thinking|reasoning)>.*", re.S | re.I)
_CLOSE_ONLY = re.compile(r"^.*</(think|thinking|reasoning)>", re.S | re.I)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)
_MARKUP = re.compile(r"[*_`#>]+")

CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
             "九": 9, "十": 10}
_CN = "零〇一二两三四五六七八九十"
_NUM = rf"(\d+(?:\.\d+)?|[{_CN}]{{1,3}})"
_FULLWIDTH = str.maketrans("０１２３４５６７８９：／（）［］", "0123456789:/()[]")

SCORE_LABELS = r"(?:overall\s+|final\s+|total\s+)?(?:score|rating|grade|mark)|综合评分|总体评分|最终评分|总评分|评分|得分|打分|分数|评分结果"
RATIONALE_LABELS = r"reason(?:ing)?|rationale|explanation|justification|comment|理由|原因|解释|说明|评语"


def strip_thinking(text: str) -> str:
    """The reply without reasoning blocks: closed ones, a lone closing tag's prefix (servers that strip
    the opening tag), and an unclosed block running to the end (the verdict never came)."""
    text = _THINK.sub(" ", text)
    text = _CLOSE_ONLY.sub(" ", text)
    text = _THINK_OPEN.sub(" ", text)
    return text


def normalize(text: str) -> str:
    return _MARKUP.sub("", strip_thinking(text).translate(_FULLWIDTH)).strip()


def cn_number(text: str) -> float | None:
    """``8``, ``7.5``, ``七``, ``十``, ``十二``, ``二十`` as a number (None when it is not one)."""
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if not text or any(ch not in CN_DIGITS for ch in text):
        return None
    if "十" not in text:
        return float(CN_DIGITS[text]) if len(text) == 1 else None
    tens, _, ones = text.partition("十")
    if len(tens) > 1 or len(ones) > 1 or "十" in tens + ones:
        return None
    return float((CN_DIGITS[tens] if tens else 1) * 10 + (CN_DIGITS[ones] if ones else 0))


def json_object(text: str) -> dict[str, Any] | None:
    """The last JSON object in ``text`` (bare or in a code fence), or None."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        for match in reversed(list(re.finditer(r"\{[^{}]*\}", candidate, re.S))):
            try:
                value = json.loads(match.group(0))
            except ValueError:
                continue
            if isinstance(value, dict):
                return {str(k).lower(): v for k, v in value.items()}
    return None


def json_verdict(clean: str, keys: Iterable[str], read: Callable[[Any], T | None]) -> T | None:
    """What ``read`` makes of the first of ``keys`` it accepts in the reply's JSON object (None when the
    reply holds no JSON object or no key reads)."""
    obj = json_object(clean)
    if obj is None:
        return None
    for key in keys:
        value = read(obj[key]) if key in obj else None
        if value is not None:
            return value
    return None


def _in_range(value: float | None, low: float, high: float) -> float | None:
    return value if value is not None and low <= value <= high else None


_SCORE_KEYS = ("score", "overall_score", "overall", "final_score", "rating", "评分", "得分", "分数")


def _json_number(value: Any, high: float) -> float | None:
    """A JSON value as a score in 1..high: a number, or a string opening with one ("8/10", "七分")."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _in_range(float(value), 1, high)
    match = re.match(rf"\s*{_NUM}", value) if isinstance(value, str) else None
    return _in_range(cn_number(match.group(1)), 1, high) if match else None


_LINE_LABEL = re.compile(rf"^\W*(?:{SCORE_LABELS})\s*(?:\(\s*1\s*-\s*10\s*\))?\s*(?:[:=\-–—]|是|为|：)\s*\[*\s*{_NUM}",
                         re.I | re.M)
_INLINE_LABEL = re.compile(
    rf"(?:{SCORE_LABELS})\s*(?:of|is|would be|[:=]|是|为|：|给出?|应为|应该是)?\s*(?:an?\s+)?\[*\s*{_NUM}"
    rf"|(?:rate|give|award|assign)\s+(?:it|this|the \w+)?\s*(?:an?\s+)?{_NUM}\s*(?:/|out of|points?|\b)"
    rf"|(?:给|打|评|得)(?:出|了)?\s*{_NUM}\s*分", re.I)
_OUT_OF = re.compile(rf"{_NUM}\s*(?:/|out of|分（满分)\s*10\b|(?:满分\s*10\s*分?[，,]?\s*(?:得分|评分)?\s*){_NUM}", re.I)
_BRACKETS = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_CN_POINTS = re.compile(rf"(?:^|[\s：:，,。（(])([{_CN}]{{1,3}}|\d+(?:\.\d+)?)\s*分(?![\u4e00-\u9fff])", re.M)


def _first(match: re.Match[str]) -> str:
    return next(g for g in match.groups() if g is not None)


def parse_score(text: str, high: float = 10) -> float | None:
    """The score (1..``high``) a reply gives, or None. Labelled lines win over inline mentions, the
    last labelled line over earlier ones (the verdict usually closes the reasoning; a verdict that
    opens the reply is then the only labelled line)."""
    clean = normalize(text)
    score = json_verdict(clean, _SCORE_KEYS, lambda value: _json_number(value, high))
    if score is not None:
        return score
    for pattern in (_BRACKETS, _LINE_LABEL, _INLINE_LABEL, _OUT_OF, _CN_POINTS):
        values = [_in_range(cn_number(_first(m)), 1, high) for m in pattern.finditer(clean)]
        values = [v for v in values if v is not None]
        if values:
            return values[-1] if pattern is not _LINE_LABEL or len(values) == 1 else _last_line_value(clean, high)
    bare = re.fullmatch(rf"\W*{_NUM}\W*", clean)
    return _in_range(cn_number(bare.group(1)), 1, high) if bare else None


def _last_line_value(clean: str, high: float) -> float | None:
    """Several labelled lines: "Helpfulness score: 7" style sub-scores may precede "Overall score: 8";
    a line naming overall / final / total wins, else the last one."""
    best = None
    for match in _LINE_LABEL.finditer(clean):
        value = _in_range(cn_number(match.group(1)), 1, high)
        if value is None:
            continue
        if re.match(r"^\W*(overall|final|total|综合|总体|最终|总)", match.group(0), re.I):
            return value
        best = value
    return best


_RATING = re.compile(r"(?:rating|grade|verdict|level|评级|等级|评分|评价)\s*(?:is|[:=：]|为|是)?\s*\(?\s*([ABCD])\b(?![a-z])",
                     re.I)
_RATING_ALONE = re.compile(r"^\W*\(?([ABCD])\)?\s*(?:[-–—:.)]|$)", re.M)


def parse_rating(text: str) -> str | None:
    """The Self-Instruct A-D rating, or None."""
    clean = normalize(text)
    rating = json_verdict(clean, ("rating", "grade", "level", "评级", "等级"), _rating_letter)
    if rating is not None:
        return rating
    found = [m.group(1).upper() for m in _RATING.finditer(clean)]
    if found:
        return found[-1]
    alone = [m.group(1) for m in _RATING_ALONE.finditer(clean)]
    return alone[-1] if alone else None


def _rating_letter(value: Any) -> str | None:
    letter = value.strip()[:1].upper() if isinstance(value, str) else ""
    return letter if letter and letter in "ABCD" else None


YES = r"yes|true|valid|appropriate|correct|acceptable|是|对|有效|合适|恰当|正确|可以接受"
NO = r"no|false|invalid|inappropriate|incorrect|unacceptable|否|不是|不对|无效|不合适|不恰当|不正确|不可接受"
QUESTIONS = {
    "valid_instruction": r"valid(?:\s+task|\s+instruction)?|instruction|task|有效任务|任务|指令",
    "appropriate_input": r"(?:appropriate\s+)?input|输入",
    "correct_output": r"(?:correct\s+)?(?:output|response|answer)|输出|回答|回复",
}
_YES_NO = re.compile(rf"({NO}|{YES})(?![a-z])", re.I)


def _yes_no(text: str) -> bool | None:
    match = _YES_NO.search(text)
    if not match:
        return None
    return re.fullmatch(NO, match.group(1), re.I) is None


def parse_questions(text: str) -> dict[str, bool]:
    """The three Self-Instruct review answers a reply gives (labelled or numbered lines)."""
    clean = normalize(text)
    obj = json_object(clean)
    answers: dict[str, bool] = {}
    if obj is not None:
        for name in QUESTIONS:
            value = obj.get(name)
            if isinstance(value, bool):
                answers[name] = value
            elif isinstance(value, str) and _yes_no(value) is not None:
                answers[name] = bool(_yes_no(value))
        if answers:
            return answers
    numbered = {"1": "valid_instruction", "2": "appropriate_input", "3": "correct_output"}
    for line in clean.splitlines():
        head, sep, tail = _split_label(line)
        number = re.match(r"^\s*(?:q(?:uestion)?\s*)?([123])[.)、:：]?\s*", line, re.I)
        for name, label in QUESTIONS.items():
            if name in answers:
                continue
            labelled = sep and re.search(label, head, re.I)
            if number and numbered[number.group(1)] == name or labelled:
                verdict = _yes_no(tail if labelled else line[number.end():])
                if verdict is not None:
                    answers[name] = verdict
                break
    return answers


def _split_label(line: str) -> tuple[str, str, str]:
    """``"Valid task: yes"`` -> ``("Valid task", ":", " yes")``; no separator: ``(line, "", "")``."""
    match = re.search(r"[:：?？]", line)
    if not match:
        return line, "", ""
    return line[:match.start()], match.group(0), line[match.end():]


_WINNER_LABEL = re.compile(
    r"(?:winner|better(?:\s+response)?|verdict|choice|preferred|final answer|answer|胜者|获胜者|更好的(?:回答|回复)?(?:是)?|结论|选择)"
    r"\s*(?:is|[:=：]|为|是)?\s*(?:response|output|assistant|回答|回复)?\s*\(?\s*(A|B|tie|draw|平局|平手)(?![a-z])", re.I)
_WINNER_PHRASE = re.compile(r"(?:response|output|assistant|回答|回复)?\s*\(?([AB])\)?\s*(?:is|was)?\s*(?:better|superior|preferred|wins|更好|更佳|更优|胜出|较好)",
                            re.I)
_TIE = re.compile(r"\b(?:tie|draw|equally good|equally bad|both (?:are )?equal)\b|平局|平手|一样好|不相上下|难分高下|两者相当", re.I)


def parse_winner(text: str) -> str | None:
    """``"A"``, ``"B"`` or ``"tie"`` from a pairwise reply, or None."""
    clean = normalize(text)
    winner = json_verdict(clean, ("winner", "better", "choice", "verdict", "preferred", "胜者"),
                          lambda value: _winner_word(value) if isinstance(value, str) else None)
    if winner is not None:
        return winner
    bracket = re.findall(r"\[\[\s*(A|B|C|tie)\s*\]\]", clean, re.I)
    if bracket:
        word = bracket[-1].upper()
        return "tie" if word in ("C", "TIE") else word
    labelled = [m.group(1) for m in _WINNER_LABEL.finditer(clean)]
    if labelled:
        return _winner_word(labelled[-1])
    phrases = [m.group(1).upper() for m in _WINNER_PHRASE.finditer(clean)]
    if phrases:
        return phrases[-1]
    if _TIE.search(clean):
        return "tie"
    bare = re.fullmatch(r"\W*(?:response|回答)?\s*([AB])\W*", clean, re.I)
    return bare.group(1).upper() if bare else None


def _winner_word(value: str) -> str | None:
    value = value.strip()
    if re.match(r"(tie|draw|平局|平手|equal)", value, re.I):
        return "tie"
    match = re.match(r"(?:response|output|回答|回复)?\s*\(?([AB])\b", value, re.I)
    return match.group(1).upper() if match else None


_RATIONALE = re.compile(rf"^\W*(?:{RATIONALE_LABELS})\s*[:：]\s*(.+)", re.I | re.M | re.S)


def parse_rationale(text: str, limit: int = 400) -> str:
    """The judge's reason: a labelled one, a JSON one, else the reply's text without verdict lines."""
    clean = normalize(text)
    reason = json_verdict(clean, ("reason", "rationale", "explanation", "reasoning", "justification", "理由", "原因"),
                          lambda value: value.strip()[:limit] if isinstance(value, str) else None)
    if reason is not None:
        return reason
    match = _RATIONALE.search(clean)
    if match:
        return _oneline(match.group(1))[:limit]
    lines = [line for line in clean.splitlines() if line.strip()
             and not re.match(rf"^\W*(?:{SCORE_LABELS}|rating|winner|valid|appropriate|correct|[123][.)]|评级|等级|胜者)",
                              line.strip(), re.I)]
    return _oneline(" ".join(lines))[:limit]


def _oneline(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
