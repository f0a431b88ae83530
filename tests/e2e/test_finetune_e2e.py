"""Fine-tune the embedded SmolLM2-135M-Instruct for a few steps on a small export, then chat with
the adapter (slow: the real model on CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sftdata.core.records import Record
from sftdata.finetune.data import render_prompt_ids, tokenize_example
from sftdata.finetune.train import FinetuneConfig, finetune
from sftdata.llm.local.embedded import load_model_and_tokenizer

pytestmark = pytest.mark.slow

ROWS = [("Name a primary color.", "Red is a primary color."),
        ("Name a fruit that is yellow.", "A banana is a yellow fruit."),
        ("What is 2 plus 2?", "2 plus 2 is 4."),
        ("Name an animal that can fly.", "A sparrow is an animal that can fly."),
        ("What is the opposite of hot?", "The opposite of hot is cold."),
        ("Name a planet.", "Mars is a planet."),
        ("What do bees make?", "Bees make honey."),
        ("What color is the sky on a clear day?", "The sky is blue on a clear day.")]


@pytest.fixture
def export_file(tmp_path) -> Path:
    """A small export in the messages format, with a system prompt on half of the rows."""
    path = tmp_path / "train.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for i, (question, answer) in enumerate(ROWS):
            system = [{"role": "system", "content": "Answer in one short sentence."}] if i % 2 else []
            fh.write(json.dumps({"messages": [*system, {"role": "user", "content": question},
                                              {"role": "assistant", "content": answer}]}) + "\n")
    return path


def test_finetune_embedded_model_and_chat_with_the_adapter(export_file, tmp_path, capsys):
    out = tmp_path / "adapter"
    summary = finetune(FinetuneConfig(data=[str(export_file)], out=str(out), max_steps=3, max_len=128,
                                      batch_tokens=256, lr=2e-4, eval_split=0.25, progress=False))
    assert summary["steps"] == 3 and summary["examples"] == 6 and summary["eval_examples"] == 2
    assert summary["dropped"] == 0 and summary["trained_tokens"] > 0
    assert 0 < summary["eval_loss"] < 5  # an instruct model already knows these answers well
    info = json.loads((out / "sftdata_finetune.json").read_text())
    assert info["base_model"] is None and Path(info["base_model_dir"]).is_dir()

    # the adapter learned the training replies: their loss is lower with it than with the base alone
    model, tokenizer = load_model_and_tokenizer(None, adapter=str(out))
    examples = [tokenize_example(tokenizer, Record(instruction=q, output=a), 128) for q, a in ROWS]
    with torch.no_grad():
        tuned = reply_loss(model, examples)
        with model.disable_adapter():
            base = reply_loss(model, examples)
    assert tuned < base - 0.01, (tuned, base)

    # generate with the adapter, from the same prompt rendering as training
    prompt = render_prompt_ids(tokenizer, Record(instruction="Name a primary color."))
    with torch.no_grad():
        generated = model.generate(input_ids=torch.tensor([prompt]), max_new_tokens=12, do_sample=False,
                                   pad_token_id=tokenizer.pad_token_id)
    reply = tokenizer.decode(generated[0, len(prompt):], skip_special_tokens=True)
    assert reply.strip()

    # and through the CLI, as a user would: the local engine with the adapter answers
    from sftdata.cli import main

    try:
        main(["llm", "chat", "--adapter", str(out), "--max-tokens", "12", "Name a primary color."])
    except SystemExit as exc:
        assert exc.code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip()


def reply_loss(model, examples) -> float:
    """Mean cross-entropy over the reply tokens (the ones training is scored on)."""
    total, count = 0.0, 0
    for example in examples:
        logits = model(input_ids=torch.tensor([example.input_ids])).logits[0, :-1].float()
        labels = torch.tensor(example.labels[1:])
        mask = labels != -100
        total += torch.nn.functional.cross_entropy(logits[mask], labels[mask], reduction="sum").item()
        count += int(mask.sum())
    return total / count
