"""The README's compatibility table, checked with the real consumers installed in the venv: every
exported format loads in ``datasets`` through the card's own ``configs`` (fast), and TRL's
``SFTTrainer`` prepares each file as the table says, without training a step; the exported
``messages`` rows render through the tokenizer's chat template exactly as ``sftdata finetune``
renders the same record (slow: the embedded model's tokenizer)."""

from __future__ import annotations

import pytest

from sftdata.core import formats
from sftdata.core.records import Record
from sftdata.export.stage import export
from sftdata.text.prompt import join_prompt

TOPICS = ["volcanoes", "bicycles", "jazz music", "tax returns", "sourdough bread", "chess openings"]
RECORDS = [Record(f"Write a short note about {t} for a school newsletter.", f"Mention the year {1990 + i}.",
                  f"{t.capitalize()} are worth a look; in {1990 + i} they made the news.", lang="en")
           for i, t in enumerate(TOPICS)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    summary = export(RECORDS, out, list(formats.names()), split=[1, 0, 0], system="Be brief.")
    return out, summary


def test_datasets_loads_every_format_through_the_cards_configs(exported):
    from datasets import load_dataset

    out, summary = exported
    for fmt in formats.names():
        dataset = load_dataset(str(out), fmt)  # the card's YAML header names the files of each config
        assert list(dataset) == ["train"] and len(dataset["train"]) == len(RECORDS)
        assert dataset["train"].column_names == summary["columns"][fmt]


@pytest.fixture(scope="module")
def trl_prepare(exported):
    """format -> TRL's prepared train dataset (SFTTrainer's own tokenization; nothing is trained)."""
    from datasets import load_dataset
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    from trl import SFTConfig, SFTTrainer

    from sftdata.llm.local.embedded import embedded_model_dir

    out, _ = exported
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    # a one-layer model with the embedded tokenizer's vocabulary: dataset preparation needs a model, not its weights
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1))
    args = SFTConfig(output_dir=str(out / "trl"), report_to=[], use_cpu=True, bf16=False, max_length=1024)

    def prepare(fmt: str):
        rows = load_dataset("json", data_files={"train": str(out / fmt / "train.jsonl")})["train"]
        return SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer).train_dataset

    return tokenizer, prepare


def _texts(tokenizer, row) -> tuple[str, str]:
    """(the whole training text, the part the loss is on)"""
    trained = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
    return tokenizer.decode(row["input_ids"]), tokenizer.decode(trained)


@pytest.mark.slow
def test_trl_sfttrainer_reads_each_format_as_the_table_says(trl_prepare):
    tokenizer, prepare = trl_prepare
    rec = RECORDS[0]
    user = join_prompt(rec.instruction, rec.input)

    text, _ = _texts(tokenizer, prepare("messages")[0])  # conversational: the chat template applies
    assert f"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n" \
           f"<|im_start|>assistant\n{rec.output}<|im_end|>" in text

    text, trained = _texts(tokenizer, prepare("prompt-completion")[0])  # loss on the completion only
    assert text.startswith(f"{user}\n{rec.output}")  # TRL's separator: the reply is not glued to the prompt
    assert trained.startswith(f"\n{rec.output}") and rec.instruction not in trained

    text, trained = _texts(tokenizer, prepare("chat-prompt-completion")[0])
    assert f"<|im_start|>user\n{user}<|im_end|>" in text and "<|im_start|>system\nBe brief." in text
    assert trained.startswith(rec.output) and rec.instruction not in trained

    # why the table says messages, not sharegpt, for TRL: it keeps the human / gpt values as roles
    text, _ = _texts(tokenizer, prepare("sharegpt")[0])
    assert f"<|im_start|>human\n{user}<|im_end|>" in text and "<|im_start|>gpt\n" in text

    with pytest.raises(KeyError, match="text"):  # alpaca is not one of TRL's dataset types
        prepare("alpaca")


@pytest.mark.slow
def test_chat_template_of_the_messages_file_is_what_finetune_trains_on(exported):
    import json

    from transformers import AutoTokenizer

    from sftdata.finetune.data import build_messages
    from sftdata.llm.local.embedded import embedded_model_dir

    out, _ = exported
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    rows = [json.loads(line) for line in (out / "messages" / "train.jsonl").open(encoding="utf-8")]
    by_instruction = {r.instruction: r for r in RECORDS}
    for row in rows:
        user = next(m["content"] for m in row["messages"] if m["role"] == "user")
        rec = by_instruction[user.split("\n\n")[0]]
        rec = Record(rec.instruction, rec.input, rec.output, meta={"system": "Be brief."})
        assert tokenizer.apply_chat_template(row["messages"], tokenize=False) == \
            tokenizer.apply_chat_template(build_messages(rec), tokenize=False)
