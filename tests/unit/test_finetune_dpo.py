"""DPO: pair reading, the shared-prompt batches against TRL 1.16's DPOTrainer, training and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sftdata.core.errors import ConfigError, DataError
from sftdata.finetune.config import FinetuneConfig
from sftdata.finetune.pair_batching import collate_pairs, pair_logps, preference_loss
from sftdata.finetune.preference import load_pairs, pair_from_obj, tokenize_pairs
from sftdata.finetune.tiny import BOS_TEMPLATE, byte_tokenizer, tiny_llama, tiny_llama_dir
from sftdata.finetune.train import finetune

WORDS = ["apple", "river", "stone", "cloud", "green", "tiger", "music", "paper"]


def conversational(word: str) -> dict:
    return {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Say {word}."}],
            "chosen": [{"role": "assistant", "content": f"{word} {word}"}],
            "rejected": [{"role": "assistant", "content": f"no {word[::-1]} thanks, not today"}]}


# ---------------------------------------------------------------- reading every preference shape

def test_every_preference_shape_reads_to_the_same_pair():
    expected = pair_from_obj({"prompt": [{"role": "user", "content": "Add 2 and 3.\n\nquickly"}],
                              "chosen": [{"role": "assistant", "content": "5"}],
                              "rejected": [{"role": "assistant", "content": "6"}]})
    shapes = [
        {"prompt": "Add 2 and 3.\n\nquickly", "chosen": "5", "rejected": "6", "margin": 3.0},   # TRL standard
        {"chosen": [{"role": "user", "content": "Add 2 and 3.\n\nquickly"}, {"role": "assistant", "content": "5"}],
         "rejected": [{"role": "user", "content": "Add 2 and 3.\n\nquickly"},
                      {"role": "assistant", "content": "6"}]},                                 # TRL implicit prompt
        {"instruction": "Add 2 and 3.", "input": "quickly", "chosen": "5", "rejected": "6"},  # LLaMA-Factory alpaca
        {"conversations": [{"from": "human", "value": "Add 2 and 3.\n\nquickly"}],           # LLaMA-Factory sharegpt
         "chosen": {"from": "gpt", "value": "5"}, "rejected": {"from": "gpt", "value": "6"}},
    ]
    for shape in shapes:
        pair = pair_from_obj(shape)
        assert (pair.prompt, pair.chosen, pair.rejected) == (expected.prompt, "5", "6"), shape


def test_a_bad_preference_line_names_file_and_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(conversational("a")) + "\n" + json.dumps({"prompt": "x", "chosen": "y"}) + "\n")
    with pytest.raises(DataError) as info:
        load_pairs([path])
    assert f"{path}:2" in str(info.value) and "rejected" in str(info.value)


# ---------------------------------------------------------------- equal to TRL's DPOTrainer

@pytest.fixture(scope="module")
def trl_trainer(tmp_path_factory):
    """TRL's DPOTrainer around a tiny Llama with LoRA (reference: the base, adapters disabled), its
    lora_B moved off zero so the policy differs from the reference."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    tokenizer = byte_tokenizer(BOS_TEMPLATE)
    tokenizer.pad_token = tokenizer.eos_token
    rows = [conversational(w) for w in WORDS[:4]]
    args = DPOConfig(output_dir=str(tmp_path_factory.mktemp("trl")), beta=0.1, report_to=[], use_cpu=True,
                     bf16=False, seed=0)
    trainer = DPOTrainer(model=tiny_llama(len(tokenizer), initializer_range=0.2), args=args,
                         train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                         peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", lora_dropout=0.0))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in trainer.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    trainer.model.train()
    examples = tokenize_pairs(tokenizer, [pair_from_obj(r) for r in rows], 256).examples
    return trainer, tokenizer, examples


def trl_loss(trainer, examples, loss_type: str) -> tuple[float, dict[str, float]]:
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    trainer.loss_types = [loss_type]
    inputs = DataCollatorForPreference(pad_token_id=trainer.processing_class.pad_token_id)(
        [{"prompt_ids": e.prompt_ids, "chosen_ids": e.chosen_ids, "rejected_ids": e.rejected_ids} for e in examples])
    with torch.no_grad():
        loss = trainer._compute_loss(trainer.model, inputs, False)
    return float(loss), {key: values[-1] for key, values in trainer._metrics["train"].items()}


def our_loss(model, examples, rows, pad_id, loss_type: str) -> tuple[float, dict[str, float], torch.Tensor]:
    batch = collate_pairs(examples, rows, pad_id)
    with torch.no_grad():
        with model.disable_adapter():
            reference = pair_logps(model, batch)
        policy = pair_logps(model, batch)
    losses, stats = preference_loss(policy, reference, 0.1, loss_type, batch.lengths)
    return float(losses.mean()), {key: float(value.mean()) for key, value in stats.items()}, policy


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_dpo_loss_and_rewards_equal_trl_on_the_same_batch(trl_trainer, loss_type):
    trainer, tokenizer, examples = trl_trainer
    expected_loss, expected = trl_loss(trainer, examples, loss_type)
    # two pairs packed in one row (prompt once per pair), two alone: the layout must not matter
    loss, stats, _ = our_loss(trainer.model, examples, [[0, 1], [2], [3]], tokenizer.pad_token_id, loss_type)
    assert loss == pytest.approx(expected_loss, abs=1e-4)
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
                "logps/chosen", "logps/rejected"):
        assert stats[key] == pytest.approx(expected[key], abs=1e-4), key


def test_each_pairs_log_probabilities_equal_trl(trl_trainer):
    trainer, tokenizer, examples = trl_trainer
    _, _, policy = our_loss(trainer.model, examples, [[0, 1, 2, 3]], tokenizer.pad_token_id, "sigmoid")
    for i, example in enumerate(examples):
        _, expected = trl_loss(trainer, [example], "sigmoid")
        assert float(policy[i]) == pytest.approx(expected["logps/chosen"], abs=1e-4)
        assert float(policy[len(examples) + i]) == pytest.approx(expected["logps/rejected"], abs=1e-4)


# ---------------------------------------------------------------- training, outputs, resume

@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return tiny_llama_dir(tmp_path_factory.mktemp("tiny") / "model", byte_tokenizer(BOS_TEMPLATE),
                          initializer_range=0.2)


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    rows = [{"prompt": f"Say {w} {i}.", "chosen": f"{w} {w}", "rejected": f"no {w[::-1]}"}
            for i in range(3) for w in WORDS]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def dpo_config(tiny_dir: Path, pairs_file: Path, out: Path, **overrides) -> FinetuneConfig:
    settings = dict(data=[str(pairs_file)], out=str(out), base_model=str(tiny_dir), method="dpo", epochs=3,
                    max_len=64, batch_tokens=256, eval_split=0.25, progress=False, precision="fp32", lr=5e-3,
                    lora_r=8, beta=0.5)
    settings.update(overrides)
    return FinetuneConfig(**settings)


@pytest.fixture(scope="module")
def dpo_run(tiny_dir, pairs_file, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("dpo") / "adapter"
    return out, finetune(dpo_config(tiny_dir, pairs_file, out))


def test_dpo_learns_the_preference_and_writes_trl_metrics(dpo_run):
    out, summary = dpo_run
    metrics = json.loads((out / "metrics.json").read_text())
    first, last = metrics["curves"]["eval"][0], metrics["curves"]["eval"][-1]
    assert first["rewards/margins"] == pytest.approx(0.0, abs=1e-6)  # policy == reference before training
    assert last["rewards/accuracies"] >= 0.9 and last["rewards/margins"] > 1.0 and last["loss"] < first["loss"]
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen"):
        assert key in metrics["curves"]["train"][-1]
    assert summary["eval_accuracy"] == last["rewards/accuracies"] and summary["pairs"] + summary["eval_pairs"] == 24
    info = json.loads((out / "sftdata_finetune.json").read_text())
    assert info["method"] == "dpo" and (out / "adapter_model.safetensors").is_file()
    held = load_pairs([out / "eval.jsonl"])  # the held-out pairs, readable as preference data again
    assert len(held) == summary["eval_pairs"]


def test_a_resumed_dpo_run_continues_from_its_checkpoint(tiny_dir, pairs_file, tmp_path):
    straight = tmp_path / "straight"
    finetune(dpo_config(tiny_dir, pairs_file, straight, epochs=2))
    resumed = tmp_path / "resumed"
    stopped = finetune(dpo_config(tiny_dir, pairs_file, resumed, epochs=2, stop_after=3))
    assert stopped["stopped_at"] == 3 and (resumed / "checkpoint" / "state.pt").is_file()
    assert not (resumed / "metrics.json").exists()
    with pytest.raises(ConfigError, match="beta"):  # a resume with other settings is refused
        finetune(dpo_config(tiny_dir, pairs_file, resumed, epochs=2, beta=0.2, resume=True))
    finetune(dpo_config(tiny_dir, pairs_file, resumed, epochs=2, resume=True))

    a = json.loads((straight / "metrics.json").read_text())["curves"]["train"]
    b = json.loads((resumed / "metrics.json").read_text())["curves"]["train"]
    assert [t["step"] for t in b] == [t["step"] for t in a]
    for x, y in zip(a, b):
        assert y["loss"] == pytest.approx(x["loss"], abs=1e-5) and y["lr"] == x["lr"]
    from safetensors.torch import load_file

    wa, wb = load_file(straight / "adapter_model.safetensors"), load_file(resumed / "adapter_model.safetensors")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)


# ---------------------------------------------------------------- the reward model

def test_reward_model_separates_held_out_pairs_and_scores_records(tiny_dir, tmp_path):
    from sftdata.core.records import Record
    from sftdata.finetune.reward import score_with_reward_model

    # separable: the chosen reply answers with the word, the rejected one refuses; held-out pairs use
    # prompts (and words) never trained on
    words = [f"{a}{b}" for a in ["ka", "lo", "mi", "tu", "ze", "ra"] for b in ["p", "n", "s", "t"]]
    rows = [{"prompt": f"Name {w}.", "chosen": f"{w} is {w}.", "rejected": "I will not."} for w in words]
    train_file, held_file = tmp_path / "train.jsonl", tmp_path / "held.jsonl"
    train_file.write_text("".join(json.dumps(r) + "\n" for r in rows[:18]), encoding="utf-8")
    held_file.write_text("".join(json.dumps(r) + "\n" for r in rows[18:]), encoding="utf-8")
    out = tmp_path / "rm"
    summary = finetune(dpo_config(tiny_dir, train_file, out, method="reward", eval_data=[str(held_file)],
                                  epochs=8, lr=1e-2))
    metrics = json.loads((out / "metrics.json").read_text())
    assert summary["method"] == "reward" and summary["eval_pairs"] == 6
    assert summary["eval_accuracy"] >= 0.9 and summary["eval_accuracy"] > metrics["curves"]["eval"][0][
        "rewards/accuracies"] - 1e-9
    assert metrics["curves"]["train"][-1]["loss"] < metrics["curves"]["train"][0]["loss"]

    records = [Record(instruction=f"Name {w}.", output=reply) for w in words[18:]
               for reply in (f"{w} is {w}.", "I will not.")]
    scored = score_with_reward_model(records, out, max_len=64)
    rewards = [r.meta["judge"]["reward"] for r in scored]
    assert all(good > bad for good, bad in zip(rewards[::2], rewards[1::2]))


def test_eval_on_held_out_pairs_matches_what_dpo_training_measured(dpo_run, tiny_dir, tmp_path, capsys):
    from sftdata.cli import main

    out, summary = dpo_run
    try:
        main(["eval", str(out / "eval.jsonl"), "--adapter", str(out), "--beta", "0.5", "--max-len", "64",
              "--out", str(tmp_path / "ev"), "--json"])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    base, dpo = report["models"]
    assert report["pairs"] == summary["eval_pairs"] and base["label"] == "base" and "reward_accuracy" not in base
    # the implicit reward against the base, on the held-out pairs: what the run's last eval logged
    assert dpo["reward_accuracy"] == pytest.approx(summary["eval_accuracy"], abs=1e-4)
    assert dpo["reward_margin"] == pytest.approx(summary["eval_margin"], abs=1e-3)
    assert dpo["logp_margin"] > base["logp_margin"]
    assert (tmp_path / "ev" / "eval.md").read_text().count("|") > 10


def test_the_shared_prompt_mask_works_for_sdpa_and_eager_attention():
    tokenizer = byte_tokenizer(BOS_TEMPLATE)
    tokenizer.pad_token = tokenizer.eos_token
    pairs = [pair_from_obj(conversational(w)) for w in WORDS[:3]]
    examples = tokenize_pairs(tokenizer, pairs, 128).examples
    logps = {}
    for impl in ("sdpa", "eager"):  # sdpa takes a boolean mask, eager an additive float one
        model = tiny_llama(len(tokenizer), initializer_range=0.2)
        model.config._attn_implementation = impl
        with torch.no_grad():
            packed = pair_logps(model, collate_pairs(examples, [[0, 1, 2]], tokenizer.pad_token_id))
            alone = torch.cat([pair_logps(model, collate_pairs(examples, [[i]], tokenizer.pad_token_id))
                               .reshape(2, 1) for i in range(3)], dim=1).reshape(-1)
        logps[impl] = packed
        assert torch.allclose(packed, alone, atol=1e-4)  # packing three pairs in a row changes nothing
    assert torch.allclose(logps["sdpa"], logps["eager"], atol=1e-4)
