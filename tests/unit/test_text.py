"""sftdata.text: one CJK class for every detector, the refusal strengths side by side, one prompt join."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sftdata.augment import evol
from sftdata.clean import rules as clean_rules
from sftdata.core.records import Record
from sftdata.core.stats import text_length
from sftdata.export.stage import prompt_text
from sftdata.filter.tokenize import tokenize_cjk
from sftdata.finetune.data import build_messages
from sftdata.generate.config import looks_chinese
from sftdata.report.data import leading_word
from sftdata.text import cjk, lang, refusals
from sftdata.text.prompt import join_prompt

# one character from each block the class must cover; U+9FA6..U+9FFF is what a range ending at
# U+9FA5 (the GB-era end of the unified block) misses
HAN = {
    "unified, after U+9FA5": "\u9fa6\u9fd0\u9fea\u9fff",
    "extension A": "\u3400\u4db5\u4dbf",
    "extension B": "\U00020000\U0002a6d6",
    "extension C-F": "\U0002a700\U0002b740\U0002b820\U0002ceb0",
    "compatibility": "\uf900\ufa2d\ufaff",
    "compatibility supplement": "\U0002f800\U0002fa1d",
    "extension G": "\U00030000",
}


@pytest.mark.parametrize("block", list(HAN))
def test_every_han_block_is_cjk_for_every_detector(block: str) -> None:
    chars = HAN[block]
    text = chars * 3  # a "sentence" of nothing but that block's characters
    assert cjk.has_cjk(text) and cjk.cjk_count(text) == len(text)
    assert all(cjk.is_cjk_char(c) and cjk.HAN_CHAR.match(c) for c in chars)
    assert tokenize_cjk(text) == list(text)  # the ROUGE tokenizer: one token per character
    assert lang.detect_lang(text) == "zh" and lang.is_cjk_text(text)
    assert text_length(text) == len(text)  # characters, not one "word"
    assert looks_chinese(text)
    assert leading_word(text, None) == text[:2]  # the report's leading "word": two Han characters
    assert not evol.only_stopwords(text)  # Han characters that are not stop words are content


def test_the_unified_block_ends_at_9fff_not_9fa5() -> None:
    # the mutation "\u9fff -> \u9fa5" in the class: these characters (Unicode 4.1-14) fall out of it
    for code in (0x9FA6, 0x9FBB, 0x9FC3, 0x9FCC, 0x9FD5, 0x9FEF, 0x9FFF):
        assert cjk.is_cjk_char(chr(code)), hex(code)
    assert not cjk.is_cjk_char("\ua000")  # Yi, the next block: not CJK


def test_cjk_class_leaves_punctuation_and_latin_out() -> None:
    assert not cjk.has_cjk("，。、“”！？ hello 123 ｈｅｌｌｏ")
    assert cjk.mostly_cjk("请用 Python 写") and not cjk.mostly_cjk("Explain 你好 in one English sentence")


def test_refusal_strengths_differ_as_documented() -> None:
    sorry = "I'm sorry to hear that. Here are three ways to feel better: rest, walk, and talk to a friend."
    declines = "I'm sorry, but I can't help with that request."
    # generate: any paragraph opening with an apology is not a task
    assert refusals.is_refusal(sorry) and refusals.is_refusal(declines)
    # augment (Evol-Instruct): "sorry" anywhere in a short answer eliminates it
    assert refusals.is_apology(sorry) and refusals.is_apology("Those shoes? Sorry, sold out.")
    # clean: only an apology that goes on to decline removes a finished record
    assert refusals.refused_answer(sorry, "Cheer me up.") is None
    assert refusals.refused_answer(declines, "Cheer me up.")["kind"] == "refusal"
    assert refusals.refused_answer(declines, "Translate: I'm sorry, but I can't help with that request.") is None
    assert clean_rules.refusal(Record(instruction="Cheer me up.", output=declines))["kind"] == "refusal"


@pytest.mark.parametrize("input_text", ["", "  ", "\n", "two numbers: 2, 3"])
def test_export_and_finetune_join_the_prompt_alike(input_text: str) -> None:
    rec = Record(instruction="Add the numbers.", input=input_text, output="5")
    user = next(m["content"] for m in build_messages(rec) if m["role"] == "user")
    assert user == prompt_text(rec) == join_prompt(rec.instruction, rec.input)
    assert user == ("Add the numbers." if not input_text.strip() else "Add the numbers.\n\ntwo numbers: 2, 3")


def test_no_module_imports_another_packages_private_module() -> None:
    root = Path(__file__).resolve().parents[2] / "sftdata"
    offenders = []
    for path in root.rglob("*.py"):
        package = path.parent.relative_to(root).parts
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            if node.level:  # resolve the relative import against this file's package
                base = list(package[:len(package) - (node.level - 1)]) if node.level > 1 else list(package)
                target = base + node.module.split(".")
            else:
                target = node.module.split(".")[1:] if node.module.startswith("sftdata") else []
            names = [target[-1]] if target else []
            names += [a.name for a in node.names]
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            owner = target[:len(target) - 1] if target and target[-1].startswith("_") else target
            if private and target and owner[:1] != list(package[:1]):
                offenders.append(f"{path.relative_to(root)}: from {'.' * node.level}{node.module} import "
                                 f"{', '.join(a.name for a in node.names)}")
    assert not offenders, offenders
