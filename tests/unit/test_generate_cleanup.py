"""Self-Instruct's step 4 and the in-loop instruction filter, on one stage, without any LLM."""

from __future__ import annotations

import json

import pytest

from sftdata.core.rundir import RunDir
from sftdata.generate.config import GenerateConfig, SeedTask
from sftdata.generate.parse import Instance, Unparsed
from sftdata.generate.self_instruct import SelfInstructStage

SEEDS = [SeedTask("Give three tips for staying healthy.", (("", "Sleep, eat well, move."),), False),
         SeedTask("Classify the sentiment of the review as positive or negative.", (("Great!", "Positive"),), True)]


@pytest.fixture
def stage(tmp_path):
    s = SelfInstructStage(GenerateConfig(num_instructions=5), SEEDS, "en")
    s.restore(RunDir(tmp_path / "run"), None)
    return s


def rejected(stage) -> list[tuple[str, str, str]]:
    stage.rejected_j._fh.flush()
    rows = [json.loads(line) for line in stage.rejected_j.path.read_text().splitlines()]
    return [(r["reason"], r["record"]["input"], r["record"]["output"]) for r in rows]


def test_bad_instances_are_rejected_with_reasons(stage):
    entries = [Instance("a", "ant"), Instance("b", ""), Instance("c", " c "), Unparsed("Input: d", "instance without an output"),
               Instance("e", "eel"), Instance("a", "ant"), Instance("f", "fox"), Instance("g", "gnu"),
               Instance("i", "Answer:"), Instance("h", "hen cut")]
    kept = stage.clean_instances("Name the letter.", entries, truncated=True, limit=3, is_classification=False,
                                 meta={"model": "m"})
    assert [(r.input, r.output) for r in kept] == [("a", "ant"), ("e", "eel"), ("f", "fox")]
    assert rejected(stage) == [("empty_output", "b", ""), ("output_equals_input", "c", " c "), ("parse_error", "", ""),
                               ("ends_with_colon", "i", "Answer:"), ("truncated", "h", "hen cut"),
                               ("duplicate", "a", "ant"), ("surplus", "g", "gnu")]
    assert all(r.is_classification is False and r.source == "self-instruct" and r.lang == "en" for r in kept)


def test_inconsistent_outputs_drop_the_whole_task(stage):
    entries = [Instance("2+2", "4"), Instance("3+3", "6"), Instance(" 2+2 ", "5")]
    assert stage.clean_instances("Add.", entries, False, 5, False, {}) == []
    assert [r[0] for r in rejected(stage)] == ["inconsistent_outputs"] * 3


def test_tasks_without_input_may_have_several_answers(stage):
    entries = [Instance("", "Roses bloom in May."), Instance("", "Snow falls on the pines.")]
    assert len(stage.clean_instances("Write a one-line poem.", entries, False, 5, False, {})) == 2


def test_instances_copied_from_the_prompts_demonstrations(stage):
    prompt = ("Task: Convert the sentence to the past tense.\nInput: She walks to school every morning.\n"
              "Output: She walked to school every morning.\n\nTask: Describe your morning routine.\n")
    entries = [Instance("", "She walked to school every morning."), Instance("", "I wake up at six and stretch."),
               Instance("Positive", "Negative")]
    kept = stage.clean_instances("Describe your morning routine.", entries, False, 5, False, {}, prompt=prompt)
    assert [r.output for r in kept] == ["I wake up at six and stretch.", "Negative"]
    assert rejected(stage) == [("copied_example", "", "She walked to school every morning.")]


def test_duplicates_of_kept_records_across_tasks(stage):
    first = stage.clean_instances("Add.", [Instance("1+1", "2")], False, 5, False, {})
    for record in first:
        stage.accept(record)
    assert stage.clean_instances("Add.", [Instance("1+1", "2"), Instance("2+2", "4")], False, 5, False, {})[0].input == "2+2"
    assert rejected(stage) == [("duplicate", "1+1", "2")]


def test_instruction_filter_rouge_against_seeds_and_kept(stage):
    assert stage.check_instruction("Give three tips for staying healthy.")[0] == "duplicate"
    near = stage.check_instruction("Give three tips for staying healthy at work.")
    assert near[0] == "rouge" and near[1]["rouge_max"] > 0.7
    assert near[1]["most_similar"] == "Give three tips for staying healthy."
    novel = stage.check_instruction("Describe the migration route of arctic terns in two sentences.")
    assert isinstance(novel, dict) and novel["rouge_max"] < 0.7
    stage.index.add("Describe the migration route of arctic terns in two sentences.")
    assert stage.check_instruction("Describe the migration route of arctic terns in three sentences.")[0] == "rouge"
    assert stage.check_instruction("Hi")[0] == "length"


def test_chinese_stage_rejects_english_instructions(tmp_path):
    s = SelfInstructStage(GenerateConfig(num_instructions=5, lang="zh"), [SeedTask("写一首关于春天的诗。", (("", "春风"),))], "zh")
    s.restore(RunDir(tmp_path / "zh"), None)
    assert s.check_instruction("Describe the migration route of arctic terns.")[0] == "language"
    assert isinstance(s.check_instruction("请用三句话介绍北极燕鸥的迁徙路线。"), dict)
    s.index.add("请用三句话介绍北极燕鸥的迁徙路线。")
    assert s.check_instruction("请用三句话介绍北极燕鸥的迁徙时间。")[0] == "rouge"  # CJK-aware ROUGE-L


def test_copies_of_the_shipped_prompt_examples_however_reworded(stage):
    """The demo run's junk: the grocery tips repeated with newlines, renumbered, behind a prefix; the
    example input again; the Chinese tips renumbered. Raw ``text in prompt`` let all of these through."""
    from sftdata.generate import prompts

    prompt = prompts.instances_prompt("en", "Give two tips for a tidy kitchen.", False, 3)
    entries = [Instance("", "1. Make a shopping list before you go\nand stick to it.\n2. Buy store brands "
                            "instead of name brands."),
               Instance("", "Here are tips: 1) make a shopping list before you go and stick to it; 2) buy store "
                            "brands instead of name brands; 3) wipe the counter."),
               Instance("She walks to school every  morning", "Wash the dishes right after dinner."),
               Instance("", "Wipe the counters every night and keep the sink empty.")]
    kept = stage.clean_instances("Give two tips for a tidy kitchen.", entries, False, 5, False, {}, prompt=prompt)
    assert [r.output for r in kept] == ["Wipe the counters every night and keep the sink empty."]
    assert [r[0] for r in rejected(stage)] == ["copied_example"] * 3

    zh = SelfInstructStage(GenerateConfig(num_instructions=5), SEEDS, "zh")
    zh.restore(RunDir(stage.rejected_j.path.parent / "zh"), None)
    prompt = prompts.instances_prompt("zh", "给出两条省电的小建议。", False, 3)
    entries = [Instance("", "一、洗菜的水可以留下来浇花。\n二、刷牙时关掉水龙头，用杯子接水。"),
               Instance("", "随手关灯，空调温度设在二十六度。")]
    kept = zh.clean_instances("给出两条省电的小建议。", entries, False, 5, False, {}, prompt=prompt)
    assert [r.output for r in kept] == ["随手关灯，空调温度设在二十六度。"]


def test_scaffolding_and_decode_damage_in_instances(stage):
    entries = [Instance("", "Here is a sample for another task.\nTask: Convert the sentence."),
               Instance("", "Light scatters.\nTask 9: Write a poem about rain."),
               Instance("", "Sunlight scatters off air molecules; blue scatters most.\ufffd"),
               Instance("", "Sunlight scatters off air molecules, and blue light scatters the most.")]
    kept = stage.clean_instances("Explain why the sky is blue.", entries, False, 5, False, {}, prompt="")
    assert len(kept) == 1
    assert [r[0] for r in rejected(stage)] == ["scaffolding", "scaffolding", "decode_damage"]


@pytest.mark.parametrize("text, reason", [
    ("Yes, the capital of France is Paris and it is lovely.", "answer_shaped"),
    ("c. 3. Summarize the paragraph below in one sentence.", "answer_shaped"),
    ("b) Write a letter to your landlord about the heating.", "answer_shaped"),
    ("是的，这个问题的答案是北京。", "answer_shaped"),
    ("请帮我们规\ufffdán的说明书写一个摘要", "decode_damage"),
    ("任务 3：写一首关于秋天的诗", "scaffolding"),
    ("Task 9: Write a short poem about the sea.", "scaffolding"),
])
def test_junk_instructions_are_rejected_with_their_reason(stage, text, reason):
    stage.lang = "zh" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en"
    stage.filter_config = stage.config.filter_config(stage.lang)
    verdict = stage.check_instruction(text)
    assert isinstance(verdict, tuple) and verdict[0] == reason


def test_real_instructions_are_not_junk(stage):
    for text in ("Yes or no: is a tomato a fruit? Explain briefly.", "Write a haiku about autumn leaves.",
                 "A. Lincoln gave a famous speech; summarize its main point."):
        assert not isinstance(stage.check_instruction(text), tuple), text


def test_a_repeated_rejection_is_kept_once_with_its_count(tmp_path):
    """The demo's rejected.jsonl held one seed echo 133 times: now one line with count 133, and the
    summary, a resume, the card and the report still count every rejection."""
    from sftdata.export.card import reject_counts
    from sftdata.report.data import rejections

    run = RunDir(tmp_path / "run")
    stage = SelfInstructStage(GenerateConfig(num_instructions=5), SEEDS, "en")
    stage.restore(run, None)
    echo = SEEDS[0].instruction
    for _ in range(3):
        assert isinstance(stage.check_instruction(echo), tuple)
        stage.reject(stage._task_record({"instruction": echo, "is_classification": None, "request_key": "k"}),
                     "duplicate", "instruction")
    stage.reject(stage._task_record({"instruction": "Other.", "is_classification": None, "request_key": "k"}),
                 "length", "instruction")
    run.checkpoint({"round": 1, "stage": stage.state()})
    assert stage.summary()["instruction_filter"]["rejected_duplicate"] == 3
    assert len(stage.rejected_j.read()) == 2

    again = SelfInstructStage(GenerateConfig(num_instructions=5), SEEDS, "en")  # a resume before the end
    again.restore(RunDir(tmp_path / "run"), run.resume()["stage"])
    assert again.summary()["instruction_filter"]["rejected_duplicate"] == 3
    again.finish(run)
    rows = [json.loads(line) for line in (tmp_path / "run" / "rejected.jsonl").read_text().splitlines()]
    assert [(r["reason"], r["count"]) for r in rows] == [("duplicate", 3), ("length", 1)]
    assert reject_counts(tmp_path / "run" / "rejected.jsonl")[("generate", "duplicate")] == 3
    assert rejections([("generate", tmp_path / "run" / "rejected.jsonl")])["generate"]["duplicate"] == 3

    folded = SelfInstructStage(GenerateConfig(num_instructions=5), SEEDS, "en")  # rerun of a finished run
    folded.restore(RunDir(tmp_path / "run"), run.resume()["stage"])
    assert folded.summary()["instruction_filter"]["rejected_duplicate"] == 3


def test_an_accepted_instruction_records_its_real_nearest_neighbour(stage):
    """meta.rouge_max was 0.0 and most_similar null on every accepted English instruction."""
    from sftdata.filter.rouge import rouge_l_f
    from sftdata.filter.tokenize import tokenize_auto

    text = "Give three tips for staying calm before an exam."
    verdict = stage.check_instruction(text)
    assert verdict["most_similar"] == SEEDS[0].instruction
    expected = rouge_l_f(tokenize_auto(SEEDS[0].instruction), tokenize_auto(text))
    assert 0.3 < verdict["rouge_max"] == round(expected, 4) <= 0.7
