"""Generate settings, seed loading and prompt building."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from sftdata.core.config import build
from sftdata.core.errors import ConfigError, DataError
from sftdata.core.paths import prompts_dir
from sftdata.generate import prompts
from sftdata.generate.config import GenerateConfig, SeedTask, derive_seed, load_seeds
from sftdata.generate.parse import parse_instances, parse_instructions, parse_tasks


@pytest.mark.parametrize("changes, option", [
    ({"num_instructions": 0}, "--num-instructions"), ({"mode": "evol"}, "--mode"), ({"lang": "fr"}, "--lang"),
    ({"instances_per_task": 0}, "--instances-per-task"), ({"seed_tasks_in_prompt": 0}, "--seed-tasks-in-prompt"),
    ({"machine_tasks_in_prompt": -1}, "--machine-tasks-in-prompt"), ({"top_p": 0}, "--top-p"),
    ({"temperature": 3}, "--temperature"), ({"max_tokens": 0}, "--max-tokens"),
    ({"rouge_threshold": 1.5}, "--rouge-threshold"), ({"min_words": 10, "max_words": 5}, "--max-words"),
    ({"no_rule": ["rogue"]}, "--no-rule"), ({"rouge_tokenizer": "x"}, "--rouge-tokenizer"),
    ({"alpaca_tasks_per_request": 0}, "--alpaca-tasks-per-request"), ({"round_size": 0}, "--round-size"),
])
def test_bad_settings_name_their_option(changes, option):
    with pytest.raises(ConfigError) as err:
        GenerateConfig(**changes).validate()
    assert str(err.value).startswith(option)


def test_from_a_config_file_section():
    config = build(GenerateConfig, {"num-instructions": 7, "seeds": "a.jsonl", "no_rule": ["rouge"], "mode": "alpaca"},
                   "generate")
    assert (config.num_instructions, config.seeds, config.no_rule, config.mode) == (7, ["a.jsonl"], ["rouge"], "alpaca")
    with pytest.raises(ConfigError, match="generate.num_instruction"):
        build(GenerateConfig, {"num_instruction": 7}, "generate")


def test_sampling_defaults_follow_the_originals_unless_set():
    si = GenerateConfig()
    assert si.sampling("instructions") == {"temperature": 0.7, "top_p": 0.5, "max_tokens": 1024}
    assert si.sampling("classify")["temperature"] == 0.0 and si.sampling("instances")["temperature"] == 0.0
    assert GenerateConfig(mode="alpaca").sampling("alpaca") == {"temperature": 1.0, "top_p": 1.0, "max_tokens": 3072}
    custom = GenerateConfig(temperature=1.2, top_p=0.9, max_tokens=200)
    assert custom.sampling("instructions") == {"temperature": 1.2, "top_p": 0.9, "max_tokens": 200}
    assert custom.sampling("instances")["max_tokens"] == 200 and custom.sampling("classify")["max_tokens"] == 16
    assert GenerateConfig().prompt_seed_tasks == 6 and GenerateConfig(mode="alpaca").prompt_seed_tasks == 3


# derive_seed's values, fixed: a change to them changes every cached request's seed (and so re-pays it)
DERIVED = {(0, "instructions", 3, 1): 881538150, (42, "instances", 0): 579209994, (7, "classify", "任务", 2): 757609516}


@pytest.mark.parametrize("hash_seed", ["0", "12345"])
def test_derived_seeds_are_the_same_in_every_process(hash_seed):
    """Python's str hash is salted per process: a seed derived from hash() would differ between runs."""
    code = ("import json, sys; from sftdata.generate.config import derive_seed; "
            "print(json.dumps([derive_seed(*p) for p in json.loads(sys.argv[1])]))")
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(list(DERIVED))], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == list(DERIVED.values())
    assert [derive_seed(*parts) for parts in DERIVED] == list(DERIVED.values())


def test_derived_seeds_are_stable_and_distinct():
    seeds = {derive_seed(s, k, r) for s in range(3) for k in ("a", "b") for r in range(20)}
    assert len(seeds) == 120 and all(0 <= s < 2**31 for s in seeds)


def test_seed_files_in_every_accepted_shape(tmp_path):
    original = tmp_path / "seed_tasks.jsonl"  # Self-Instruct's own schema
    original.write_text(json.dumps({
        "id": "seed_task_0", "name": "breakfast", "instruction": "Suggest a breakfast without eggs.",
        "instances": [{"input": "", "output": "Oatmeal with nuts."}, {"input": "vegan", "output": "Tofu scramble."}],
        "is_classification": False}) + "\n" + json.dumps({
        "id": "seed_task_1", "name": "sentiment", "instruction": "Is the review positive or negative?",
        "instances": [{"input": "Great!", "output": "Positive"}], "is_classification": True}) + "\n")
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in [
        {"instruction": "Name a color.", "input": "", "output": "Red"},
        {"instruction": "Name a color.", "input": "", "output": "Blue"},
        {"instruction": "Count to three.", "input": "", "output": "1 2 3"}]))
    seeds, lang, files = load_seeds([str(original), str(records)], None)
    assert lang == "en" and files == [str(original), str(records)]
    assert [s.instruction for s in seeds] == ["Suggest a breakfast without eggs.", "Is the review positive or negative?",
                                              "Name a color.", "Count to three."]
    assert seeds[0].instances == (("", "Oatmeal with nuts."), ("vegan", "Tofu scramble.")) and seeds[1].is_classification
    assert len(seeds[2].instances) == 2 and seeds[2].is_classification is None


def test_language_comes_from_the_seeds(tmp_path):
    path = tmp_path / "zh.jsonl"
    path.write_text("".join(json.dumps({"instruction": t, "output": "好"}, ensure_ascii=False) + "\n"
                            for t in ["写一首诗。", "解释光合作用。", "Translate to French."]), encoding="utf-8")
    assert load_seeds([str(path)], None)[1] == "zh"
    assert load_seeds([str(path)], "en")[1] == "en"


def test_bad_seed_files(tmp_path, monkeypatch):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "ok", "output": "x"}\n{"instances": []}\n')
    with pytest.raises(DataError) as err:
        load_seeds([str(bad)], None)
    assert f"{bad}:2:" in str(err.value)
    monkeypatch.setattr("sftdata.generate.config.seeds_dir", lambda: tmp_path / "none")
    with pytest.raises(ConfigError, match="--seeds"):
        load_seeds(None, "en")


def test_packaged_seeds_are_the_default(monkeypatch, tmp_path):
    (tmp_path / "en.jsonl").write_text(json.dumps({"instruction": "Name a fruit.", "instances": [
        {"input": "", "output": "Apple"}], "is_classification": False}) + "\n")
    monkeypatch.setattr("sftdata.generate.config.seeds_dir", lambda: tmp_path)
    seeds, lang, files = load_seeds(None, None)
    assert lang == "en" and files == [str(tmp_path / "en.jsonl")] and seeds[0].instruction == "Name a fruit."


# ---------------------------------------------------------------- prompts

@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_prompt_exists_natively_in_both_languages(lang):
    for name in prompts.NAMES:
        path = prompts_dir() / lang / f"{name}.txt"
        assert path.is_file(), path
        text = path.read_text(encoding="utf-8")
        if lang == "zh" and name != "alpaca_example":
            assert len(re.findall(r"[\u4e00-\u9fff]", text)) > 0.3 * len(text.replace(" ", "")) or len(text) < 20


def test_instruction_prompt_lists_the_tasks_and_opens_the_next_number():
    text = prompts.instructions_prompt("en", ["Write a poem:", "Name   a\ncolor."], 4)
    assert "1. Write a poem\n2. Name a color." in text and text.rstrip().endswith("3.")
    assert "3 to 6" in text
    assert parse_instructions(text.split("\n\n")[1]).items == ["Write a poem", "Name a color."]
    zh = prompts.instructions_prompt("zh", ["写一首诗。"], 5)
    assert "1. 写一首诗。" in zh and "从 2 到 6" in zh


def test_classify_and_instance_prompts():
    assert prompts.classify_prompt("en", "Is it spam?").rstrip().endswith("Task: Is it spam?\nIs it classification?")
    assert prompts.classify_prompt("zh", "判断真假。").rstrip().endswith("任务：判断真假。\n是否为分类任务？")
    out_first = prompts.instances_prompt("en", "Is the number odd or even?", True, 3)
    assert "Class label:" in out_first and "up to 3" in out_first
    assert "类别标签：" in prompts.instances_prompt("zh", "判断奇偶。", True, 2)
    assert "输入：无输入" in prompts.instances_prompt("zh", "写一首诗。", False, 2)
    # the prompts' own demonstrations are in the format the parsers read
    sample = prompts.instances_prompt("en", "x", False, 2).split("Here is a sample for another task.")[1]
    demo = sample.split("Task: Give two tips")[0].split("Task: Convert the sentence to the past tense.")[1]
    assert [(i.input, i.output) for i in parse_instances(demo).items] == [
        ("She walks to school every morning.", "She walked to school every morning."),
        ("They are building a new bridge.", "They were building a new bridge.")]


@pytest.mark.parametrize("lang, labels", [("en", ("Instruction:", "Input: <noinput>")), ("zh", ("指令：", "输入：无输入"))])
def test_alpaca_prompt_shows_seed_tasks_in_the_parsable_format(lang, labels):
    examples = [SeedTask("Name a color.", (("", "Red"),)), SeedTask("Add the numbers.", (("2, 3", "5"),))]
    text = prompts.alpaca_prompt(lang, examples, 20)
    assert all(label in text for label in labels) and "20" in text
    assert text.rstrip().endswith(("Task 3", "任务3"))
    shown = text[text.index(labels[0]) - 10:text.index("Continue the list" if lang == "en" else "请接着写")]
    assert [(t.instruction, t.input, t.output) for t in parse_tasks(shown).items][-2:] == [
        ("Name a color.", "", "Red"), ("Add the numbers.", "2, 3", "5")]


def test_render_replaces_only_known_names():
    assert prompts.render("{a} {b} {json: 1}", a="x") == "x {b} {json: 1}"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_packaged_seed_files_load_and_fill_every_prompt(lang):
    seeds, detected, files = load_seeds(None, lang)
    assert detected == lang and files[0].endswith(f"seeds/{lang}.jsonl") and len(seeds) >= 100
    assert load_seeds(files, None)[1] == lang  # the language is read back from the seeds themselves
    clf = [s for s in seeds if s.is_classification]
    assert clf and all(s.instances for s in seeds)
    text = prompts.instructions_prompt(lang, [s.instruction for s in seeds[:8]], 8)
    assert parse_instructions(text.split("\n\n")[1]).items == [prompts.one_line(s.instruction) for s in seeds[:8]]
    assert prompts.alpaca_prompt(lang, seeds[:3], 20).count("\n") > 10
