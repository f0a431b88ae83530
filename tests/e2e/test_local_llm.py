"""The embedded model end to end: dequantize once, chat from the CLI offline, batched generation."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sftdata.llm.base import Request

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SFTDATA = Path(sys.executable).parent / "sftdata"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The reference runs (transformers' generate) use one thread: on a machine other processes keep
    busy, two OpenMP threads can run 10x slower, and on an idle one batch-1 generation gains little."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def home(tmp_path_factory):
    """An empty SFTDATA_HOME for this session; this process and its children use it."""
    path = tmp_path_factory.mktemp("sftdata_home")
    before = os.environ.get("SFTDATA_HOME")
    os.environ["SFTDATA_HOME"] = str(path)
    yield path
    if before is None:
        os.environ.pop("SFTDATA_HOME", None)
    else:
        os.environ["SFTDATA_HOME"] = before


def offline_env(home: Path) -> dict[str, str]:
    return {**os.environ, "SFTDATA_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def chat(home: Path, *args: str) -> subprocess.CompletedProcess:
    command = [str(SFTDATA)] if SFTDATA.exists() else [sys.executable, "-c", "from sftdata.cli import main; main()"]
    return subprocess.run([*command, "llm", "chat", *args], env=offline_env(home), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def first_chat(home):
    """The first call: it dequantizes the GGUF into the empty home, then answers."""
    return chat(home, "Name three primary colors.")


@pytest.fixture(scope="session")
def backend(home, first_chat):
    from sftdata.llm.local.engine import LocalBackend

    local = LocalBackend(batch_size=4)
    local.engine()
    yield local
    asyncio.run(local.aclose())


def complete(backend, requests):
    return asyncio.run(backend.complete(requests))


def test_chat_answers_offline_from_the_embedded_model(home, first_chat):
    assert first_chat.returncode == 0, first_chat.stderr
    assert first_chat.stdout.strip()
    model_dir = home / "models" / "SmolLM2-135M-Instruct"
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "tokenizer.json").is_file()
    assert not [p for p in model_dir.parent.iterdir() if p.name.startswith(".")]  # no half-built leftovers


def test_second_call_loads_from_the_cache_in_under_5_seconds(home, first_chat):
    weights = home / "models" / "SmolLM2-135M-Instruct" / "model.safetensors"
    built = weights.stat().st_mtime_ns
    # from interpreter start to a model ready to generate: imports, tokenizer, weights, engine set-up
    script = ("import time; t, c = time.perf_counter(), time.process_time()\n"
              "from sftdata.llm.local.engine import LocalBackend\n"
              "LocalBackend().engine()\n"
              "import sys; assert 'transformers' not in sys.modules, 'the cached model needs no transformers'\n"
              "print(time.perf_counter() - t, time.process_time() - c)\n")
    done = subprocess.run([sys.executable, "-c", script], env=offline_env(home), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    wall, cpu = map(float, done.stdout.strip().splitlines()[-1].split())
    # on a machine other processes keep busy, wall time measures them too: the CPU time spent is
    # what this process costs (on an idle machine the two are close)
    busy = os.getloadavg()[0] > (os.cpu_count() or 1)
    assert (cpu if busy else wall) < 5.0, f"loading took {wall:.1f} s ({cpu:.1f} s of CPU)"
    assert weights.stat().st_mtime_ns == built  # reused, not rebuilt
    again = chat(home, "Name three primary colors.")
    assert again.returncode == 0 and again.stdout.strip() == first_chat.stdout.strip()  # greedy: same answer


def test_a_missing_model_directory_is_a_config_error(home, tmp_path):
    done = chat(home, "hi", "--model", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert "--model" in done.stderr and "Traceback" not in done.stderr


def test_batch_returns_one_completion_per_request_in_order(backend):
    prompts = ["What is 2+2?", "Name a color.", "Write a haiku about the sea.", "Say hello.", "Name a fruit.",
               "What is the capital of France?"]
    requests = [Request.chat(p, temperature=0.7, top_p=0.9, max_tokens=24, seed=i) for i, p in enumerate(prompts)]
    requests[2] = Request.chat(prompts[2], temperature=0.0, max_tokens=24)
    requests[5] = Request.chat(prompts[5], temperature=0.0, max_tokens=24)
    out = complete(backend, requests)
    assert len(out) == len(requests)
    for completion in out:
        assert completion.ok and completion.text.strip()
        assert completion.finish_reason in ("stop", "length")
        assert completion.usage.prompt_tokens > 0 and 0 < completion.usage.completion_tokens <= 24
        assert completion.model == "SmolLM2-135M-Instruct"
    assert "Paris" in out[5].text  # each answer belongs to its own prompt
    # the same requests again: the same completions (greedy and seeded sampling alike)
    assert [c.text for c in complete(backend, requests)] == [c.text for c in out]


def test_max_tokens_gives_finish_reason_length(backend):
    out = complete(backend, [Request.chat("Write a long essay about the history of Rome.", temperature=0,
                                          max_tokens=5)])[0]
    assert out.finish_reason == "length" and out.truncated
    assert out.usage.completion_tokens == 5 and out.text.strip()


def test_stop_strings_cut_the_text(backend):
    free = complete(backend, [Request.chat("Name three primary colors.", temperature=0, max_tokens=48)])[0]
    assert "Blue" in free.text
    stopped = complete(backend, [Request.chat("Name three primary colors.", temperature=0, max_tokens=48,
                                              stop=("Blue",))])[0]
    assert stopped.finish_reason == "stop"
    assert stopped.text == free.text[:free.text.index("Blue")]
    assert stopped.usage.completion_tokens < free.usage.completion_tokens


def test_seeds_make_sampling_reproducible(backend):
    def req(seed):
        return Request.chat("Write one sentence about winter.", temperature=1.0, top_p=0.95, max_tokens=16, seed=seed)

    # a row's draws depend on its seed alone, not on its place in the batch; different seeds differ.
    # (Across different batch compositions bf16 rounding can still change a token: not asserted.)
    first = complete(backend, [req(1), req(2), req(1), req(3), req(4)])
    assert first[0].text == first[2].text
    assert len({c.text for c in first}) == 4


def test_the_lean_forward_matches_transformers_exactly_in_float32(backend):
    import torch

    from sftdata.llm.local.embedded import load_model_and_tokenizer
    from sftdata.llm.local.engine import Engine
    from sftdata.llm.local.fast_llama import FastLlama, HFForward

    model, tokenizer = load_model_and_tokenizer(dtype=torch.float32)
    requests = [Request.chat(p, temperature=0, max_tokens=12) for p in ("Name three primary colors.", "hi")]
    fast = Engine(model, tokenizer, batch_size=2)
    assert isinstance(fast.forward, FastLlama)
    generic = Engine(model, tokenizer, batch_size=2)
    generic.forward = HFForward(model)
    started = time.perf_counter()
    texts = [c.text for c in fast.generate(requests)]
    assert texts == [c.text for c in generic.generate(requests)]
    for request, text in zip(requests, texts):  # and both match plain generate, one prompt at a time
        ids = tokenizer.apply_chat_template(request.message_dicts(), add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        out = model.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        assert tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True) == text
    assert time.perf_counter() - started < 120


def test_the_lite_loader_tokenizes_and_templates_like_transformers(backend):
    from transformers import AutoTokenizer

    from sftdata.llm.local.embedded import embedded_model_dir
    from sftdata.llm.local.lite import LiteModel, LiteTokenizer, unsupported_reason

    directory = embedded_model_dir()
    assert unsupported_reason(directory) is None
    assert isinstance(backend.engine().model, LiteModel)  # the default path skips transformers
    lite, hf = LiteTokenizer(directory), AutoTokenizer.from_pretrained(directory)
    conversations = [[{"role": "user", "content": "Name three primary colors."}],
                     [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "你好，世界！ ünïcode 🙂"}],
                     [{"role": "user", "content": "a\n\n  spaced   out\t"}, {"role": "assistant", "content": "ok"},
                      {"role": "user", "content": "<|im_end|> inside"}]]
    for messages in conversations:
        text = lite.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert text == hf.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = lite(text, add_special_tokens=False)["input_ids"]
        assert ids == hf(text, add_special_tokens=False)["input_ids"]
        for skip in (True, False):
            assert lite.decode(ids, skip_special_tokens=skip) == hf.decode(ids, skip_special_tokens=skip)
    assert (lite.eos_token_id, lite.pad_token_id) == (hf.eos_token_id, hf.pad_token_id)


def test_a_lora_adapter_is_merged_and_runs_on_the_lean_path(backend, tmp_path, monkeypatch):
    import torch
    from peft import LoraConfig, PromptTuningConfig, get_peft_model

    from sftdata.llm.local.embedded import load_model_and_tokenizer
    from sftdata.llm.local.engine import LocalBackend
    from sftdata.llm.local.fast_llama import FastLlama

    monkeypatch.setenv("SFTDATA_DTYPE", "float32")  # merged vs unmerged compared without bf16 rounding
    torch.manual_seed(0)
    base, tokenizer = load_model_and_tokenizer(dtype=torch.float32)
    lora = get_peft_model(base, LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False))  # random B: the adapter changes outputs
    lora.save_pretrained(tmp_path / "lora")
    request = Request.chat("Name three primary colors.", temperature=0, max_tokens=12)
    ids = tokenizer.apply_chat_template(request.message_dicts(), add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        out = lora.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    want = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

    tuned = LocalBackend(adapter=str(tmp_path / "lora"))
    assert isinstance(tuned.engine().forward, FastLlama)
    got = complete(tuned, [request])[0]
    assert got.ok and got.text == want
    assert got.text != complete(backend, [request])[0].text  # the adapter is really applied

    # prompt tuning cannot merge: it runs through transformers' generate, still one completion each
    prompt = get_peft_model(lora.unload(), PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    prompt.save_pretrained(tmp_path / "prompt")
    plain = LocalBackend(adapter=str(tmp_path / "prompt"), batch_size=2)
    answers = complete(plain, [request, Request.chat("Say hi.", temperature=0.7, max_tokens=6, seed=1)])
    assert plain.engine().plain and [a.ok for a in answers] == [True, True] and answers[0].text
