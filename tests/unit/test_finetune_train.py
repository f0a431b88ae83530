"""The training loop on a tiny random Llama: methods, accumulation, schedule, outputs, reload."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from sftdata.core.errors import ConfigError
from sftdata.core.records import Record
from sftdata.eval.stage import score_references
from sftdata.finetune.batching import collate
from sftdata.finetune.data import IGNORE, TokenizedExample, load_rows
from sftdata.finetune.methods import MethodOptions, apply_method
from sftdata.finetune.outputs import Curves
from sftdata.finetune.runtime import Dist, TokenLoss, batch_loss, lr_at, optimizer_step
from sftdata.finetune.tiny import byte_tokenizer, tiny_llama, tiny_llama_dir
from sftdata.finetune.train import FinetuneConfig, backward_window, split_eval, train_adapter

WORDS = ["apple", "river", "stone", "cloud", "green", "tiger", "music", "paper"]
# learning rates that make a 20k-parameter random model learn within a few dozen steps
FAST_LR = {"lora": 2e-2, "ia3": 1e-1, "prefix": 1e-1, "prompt": 1e-1}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    # a large init: a random model whose outputs depend on its weights enough to learn fast
    return tiny_llama_dir(tmp_path_factory.mktemp("tiny") / "model", byte_tokenizer(), initializer_range=0.2)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    rows = [{"instruction": f"Repeat {w}.", "input": "", "output": f"{w} {w}"} for w in WORDS * 3]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def config(tiny_dir: Path, data_file: Path, out: Path, **overrides) -> FinetuneConfig:
    settings = dict(data=[str(data_file)], out=str(out), base_model=str(tiny_dir), epochs=100, max_len=64,
                    batch_tokens=256, eval_split=0.2, progress=False, precision="fp32")
    settings.update(overrides)
    return FinetuneConfig(**settings)


def test_grad_accumulation_normalizes_by_the_tokens_of_the_whole_window():
    model = apply_method(tiny_llama(100, initializer_range=0.2), MethodOptions())
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    loss = TokenLoss(model, prompt_learning=False)
    short = TokenizedExample([5, 6, 7, 8], [IGNORE, IGNORE, IGNORE, 8])                     # 1 token
    long = TokenizedExample(list(range(10, 40)), [IGNORE] * 2 + list(range(12, 40)))         # 28 tokens
    window = [collate([short], [[0]], 0, False), collate([long], [[0]], 0, False)]
    params = [p for p in model.parameters() if p.requires_grad]

    def grads() -> list[torch.Tensor]:
        out = [p.grad.clone() for p in params]
        model.zero_grad()
        return out

    loss_sum, tokens = backward_window(loss, window, torch.device("cpu"), Dist(), torch.autocast("cpu", enabled=False))
    accumulated = grads()
    assert tokens == 1 + 28
    # reference: the mean token loss over both batches as one
    (sum(batch_loss(loss, b) for b in window) / tokens).backward()
    reference = grads()
    assert loss_sum == pytest.approx(float(sum(batch_loss(loss, b).detach() for b in window)), rel=1e-6)
    for got, want in zip(accumulated, reference):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-8)
    # the common mistake (mean of per-batch means) weighs the 1-token batch 28x: visibly different
    ((batch_loss(loss, window[0]) / 1 + batch_loss(loss, window[1]) / 28) / 2).backward()
    naive = grads()
    assert any(not torch.allclose(a, b, rtol=1e-2) for a, b in zip(naive, reference))


def test_learning_rate_warms_up_then_decays_by_cosine_to_the_floor():
    lrs = [lr_at(s, total=100, warmup=10, peak=1.0, floor=0.1) for s in range(100)]
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))
    assert lrs[10] == pytest.approx(1.0) and lrs[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lr_at(55, 100, 10, 1.0, 0.1) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 45 / 89)))


def test_optimizer_step_clips_sets_the_scheduled_lr_steps_and_clears_gradients():
    weight = torch.nn.Parameter(torch.zeros(4))
    optimizer = torch.optim.SGD([weight], lr=123.0)
    weight.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])  # norm 5, clipped to 1
    grad_norm, lr = optimizer_step(optimizer, [weight], step=55, total=100, warmup=10, peak=1.0, floor=0.1,
                                   max_grad_norm=1.0)
    assert grad_norm == pytest.approx(5.0)  # the norm before clipping, as the curves log it
    assert lr == pytest.approx(lr_at(55, 100, 10, 1.0, 0.1)) == optimizer.param_groups[0]["lr"]
    assert weight.detach().tolist() == pytest.approx([-lr * 0.6, -lr * 0.8, 0.0, 0.0], rel=1e-5)
    assert weight.grad is None


def test_eval_split_is_seeded_and_keeps_duplicates_together():
    records = [Record(instruction=f"q{i % 30}", output="a") for i in range(60)]  # each twice
    train, held = split_eval(records, 0.1, seed=1)
    assert len(held) == 6 and len(train) == 54
    assert not {r.id for r in train} & {r.id for r in held}
    assert split_eval(records, 0.1, seed=1) == (train, held)
    assert split_eval(records, 0.0, seed=1) == (records, [])


def test_overfitting_warning_when_eval_rises_while_train_falls():
    curves = Curves()
    curves.add_eval(0, 2.0)
    for step, loss in enumerate([2.0, 1.5, 1.0, 0.5], start=1):
        curves.add_train(step, loss, 1e-3, 1.0, 10, 20, epoch=0, seconds=step)
        if step == 2:
            assert curves.add_eval(step, 1.8) is None  # still improving
    warning = curves.add_eval(4, 2.2)
    assert warning and "overfitting" in warning and curves.warnings == [warning]
    assert curves.add_eval(5, 2.5) is None  # warned once


@pytest.mark.parametrize("method", ["lora", "prefix", "prompt", "ia3"])
def test_each_method_trains_saves_and_reloads(tiny_dir, data_file, tmp_path, method):
    out = tmp_path / method
    summary, model, tokenizer = train_adapter(config(tiny_dir, data_file, out, method=method,
                                                     lr=FAST_LR[method], max_steps=40, eval_every=20))
    metrics = json.loads((out / "metrics.json").read_text())
    train_losses = [t["loss"] for t in metrics["curves"]["train"]]
    assert len(train_losses) == 40 and summary["steps"] == 40
    assert sum(train_losses[-5:]) / 5 < 0.7 * train_losses[0], train_losses  # it learns
    evals = metrics["curves"]["eval"]
    assert [e["step"] for e in evals] == [0, 20, 40] and evals[-1]["loss"] < evals[0]["loss"]
    assert summary["packing"] is (method in ("lora", "ia3"))

    # the saved adapter, loaded on a fresh base, gives identical logits
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_dir), str(out)).eval()
    model.eval()
    ids = torch.tensor([tokenizer("### User:\nRepeat apple.\n\n### Assistant:\n").input_ids])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, model(input_ids=ids).logits,
                                   rtol=0, atol=0)
        base = AutoModelForCausalLM.from_pretrained(tiny_dir).eval()
        assert not torch.allclose(base(input_ids=ids).logits, model(input_ids=ids).logits[:, -ids.shape[1]:])


def test_outputs(tiny_dir, data_file, tmp_path):
    out = tmp_path / "run"
    summary, model, tokenizer = train_adapter(config(tiny_dir, data_file, out, max_steps=3, lr=1e-2))
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "metrics.json",
            "loss.png", "sftdata_finetune.json", "eval.jsonl"} <= names
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    info = json.loads((out / "sftdata_finetune.json").read_text())
    assert info["base_model"] == str(tiny_dir) and Path(info["base_model_dir"]) == tiny_dir.resolve()
    assert info["config"]["method"] == "lora" and info["config"]["lr"] == 1e-2
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == info["base_model_dir"]
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("tokens_per_s", "peak_memory_mb", "train_loss", "eval_loss", "eval_perplexity", "curves"):
        assert metrics[key] is not None, key
    assert metrics["eval_perplexity"] == pytest.approx(math.exp(metrics["eval_loss"]))
    assert metrics["peak_memory_mb"]["rss_mb"] > 0 and metrics["real_tokens"] > metrics["trained_tokens"] > 0
    # the tokenizer got the default template and a pad token, and the saved one carries both
    assert "chat_template" in summary["tokenizer_changes"]
    from transformers import AutoTokenizer

    saved = AutoTokenizer.from_pretrained(out)
    assert "### Assistant" in saved.chat_template and saved.pad_token == "</s>"
    held = load_rows([out / "eval.jsonl"])
    assert len(held) == summary["eval_examples"] > 0
    # `sftdata eval` (score_references) computes the same held-out loss as training reported
    again = score_references(model.eval(), tokenizer, held, batch_size=8, max_len=64)
    assert again["loss"] == pytest.approx(summary["eval_loss"], rel=1e-5) and again["too_long"] == 0
    from transformers import AutoModelForCausalLM

    base = score_references(AutoModelForCausalLM.from_pretrained(tiny_dir), tokenizer, held,
                            batch_size=8, max_len=64)
    assert base["reference_tokens"] == again["reference_tokens"] and base["loss"] != pytest.approx(again["loss"])


def test_prefix_tuning_cannot_pack(tiny_dir, data_file, tmp_path):
    with pytest.raises(ConfigError, match="--packing"):
        train_adapter(config(tiny_dir, data_file, tmp_path, method="prefix", packing=True))


def test_bf16_with_gradient_checkpointing_trains(tiny_dir, data_file, tmp_path):
    summary, model, _ = train_adapter(config(tiny_dir, data_file, tmp_path / "bf16", precision="bf16", lr=2e-2,
                                             max_steps=12, gradient_checkpointing=True, eval_every=12))
    assert summary["bf16"] is True
    assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
    weights = {p.dtype for n, p in model.named_parameters() if not p.requires_grad}
    trained = {p.dtype for n, p in model.named_parameters() if p.requires_grad}
    assert weights == {torch.bfloat16} and trained == {torch.float32}  # frozen base in bf16, adapter fp32
    losses = [t["loss"] for t in json.loads((tmp_path / "bf16" / "metrics.json").read_text())["curves"]["train"]]
    assert sum(losses[-3:]) / 3 < 0.85 * losses[0], losses
