"""The local backend: the embedded SmolLM2-135M-Instruct (or any local HF model directory) on the CPU.

The engine is our own decode loop rather than ``model.generate`` one prompt at a time:
- continuous batching (:mod:`sftdata.llm.local.decode`): rows that finish leave the batch and waiting
  prompts take their place, so it stays full until the queue runs dry; prompts are admitted
  shortest first, which keeps left padding small;
- the prompts' common prefix (the chat template's system prompt) is prefilled once and shared;
- a KV cache that grows in place instead of being re-concatenated every step (:mod:`.kv_cache`);
- a lean forward for Llama-architecture models (:mod:`.fast_llama`), transformers' own otherwise;
- a sampler that looks for the top-p nucleus among the top-k tokens (:mod:`.sampling`);
- bf16 where the CPU computes it natively; a thread count chosen by measuring (:mod:`.threads`);
- every row's bytes kept valid UTF-8 when a vocabulary splits characters across tokens (:mod:`.utf8`).
Each request keeps its own temperature, top_p, max_tokens, stop strings and seed inside a shared
batch; a request's random draws depend on its seed only, not on its neighbours.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from ...core.errors import ConfigError, SftdataError
from ..base import Completion, Request, Usage
from .decode import Batch, Row
from .embedded import display_name, inference_dtype, load_model_and_tokenizer, resolve_model_dir
from .fast_llama import make_forward
from .lite import load_lite, unsupported_reason
from .threads import ThreadChooser
from .utf8 import Utf8Guard, complete_text

REFILL_FRACTION = 0.75  # admit waiting prompts once the batch has shrunk below this share of its size
MIN_SHARED_PREFIX = 8  # shorter common prompt prefixes are not worth a separate prefill
PREFIX_CACHE_SIZE = 8  # prompt prefixes whose keys/values are kept between calls

TokenCounter = Callable[[int], None]  # told the tokens processed as they are: prompts at prefill, one per row a step


class Cancelled(Exception):
    """The caller stopped waiting (Ctrl-C, a cancelled task): generation ended between two decode steps."""


class LocalBackend:
    """The ``Backend`` of the embedded model or a local HF model directory. Loads on the first request."""

    name = "local"

    def __init__(self, model: str | None = None, adapter: str | None = None, batch_size: int = 16) -> None:
        self.model = display_name(model)
        self._model_path = model
        self._adapter = adapter
        self._adapter_digest: str | None = None
        self.batch_size = max(1, batch_size)
        self._engine: Engine | None = None
        self._lock = threading.Lock()  # one generation at a time: two would only fight for the cores

    @property
    def cache_identity(self) -> str:
        """The model's name, and with an adapter its weights' digest: the same prompt and seed through
        another adapter (or the same directory retrained) is another answer, never a cache hit."""
        if self._adapter is None:
            return self.model
        if self._adapter_digest is None:
            self._adapter_digest = adapter_digest(self._adapter)
        return f"{self.model}+adapter:{self._adapter_digest}"

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(*load_for_inference(self._model_path, self._adapter),
                                  batch_size=self.batch_size, model_name=self.model)
        return self._engine

    live_tokens = True  # complete() takes on_tokens (see llm.base.Backend)

    async def complete(self, requests: list[Request], on_tokens: TokenCounter | None = None) -> list[Completion]:
        if not requests:
            return []
        cancel = threading.Event()
        try:
            return await asyncio.to_thread(self._complete_blocking, list(requests), cancel, on_tokens)
        except asyncio.CancelledError:
            # the thread cannot be cancelled from here: it stops at its next decode step instead of
            # generating the rest of the batch (Ctrl-C, and the process exit that joins the thread, wait
            # one step, not minutes)
            cancel.set()
            raise

    def _complete_blocking(self, requests: list[Request], cancel: threading.Event | None = None,
                           on_tokens: TokenCounter | None = None) -> list[Completion]:
        with self._lock:
            if cancel is not None and cancel.is_set():  # cancelled while waiting for the lock
                raise Cancelled
            engine = self.engine()  # a model that cannot load is a configuration error: it raises
            try:
                return engine.generate(requests, cancel=cancel, on_tokens=on_tokens)
            except (SftdataError, KeyboardInterrupt, Cancelled):
                raise
            except Exception as exc:  # noqa: BLE001 - one failed batch becomes failed completions, not a crash
                return [Completion.failure(type(exc).__name__, str(exc), model=self.model) for _ in requests]

    async def aclose(self) -> None:
        self._engine = None


def adapter_digest(adapter: str) -> str:
    """16 hex digits of the adapter's weights file (its path when it has none we know)."""
    import hashlib

    directory = Path(adapter).expanduser()
    for name in ("adapter_model.safetensors", "adapter_model.bin"):
        if (directory / name).is_file():
            digest = hashlib.sha256()
            with open(directory / name, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()[:16]
    return str(directory.resolve())


def load_for_inference(model: str | None, adapter: str | None) -> tuple[Any, Any]:
    """The model in its inference dtype; a LoRA-style adapter is merged into the weights.

    A plain Llama-family directory without adapter loads without transformers (:mod:`.lite`).

    Merging happens in float32 before the cast, so the adapter's small deltas are not rounded away
    by bf16 first. Prompt-learning adapters (prefix, prompt tuning) cannot merge; they stay wrapped.
    """
    dtype = inference_dtype()
    if adapter is None:
        directory = resolve_model_dir(model)
        if os.environ.get("SFTDATA_FAST_FORWARD", "1") != "0" and unsupported_reason(directory) is None:
            return load_lite(directory, dtype)  # no transformers import: seconds off every start
        return load_model_and_tokenizer(str(directory), dtype=dtype)
    lm, tokenizer = load_model_and_tokenizer(model, dtype=torch.float32, adapter=adapter)
    if not _is_prompt_learning(lm):
        lm = lm.merge_and_unload()
    return lm.to(dtype).eval(), tokenizer


def _is_prompt_learning(model: Any) -> bool:
    config = getattr(model, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


def _left_padded(sequences: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    """``sequences`` as one left-padded id tensor [B, W] and the boolean mask of the real tokens."""
    width = max(len(seq) for seq in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.bool)
    for i, seq in enumerate(sequences):
        ids[i, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
        mask[i, width - len(seq):] = True
    return ids, mask


class Engine:
    """Batched generation with a transformers causal LM and its tokenizer (see the module docstring)."""

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 16, model_name: str = "",
                 stop_ids: Iterable[int] = ()) -> None:
        """``stop_ids``: end-of-turn tokens that end a row besides the model's EOS."""
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = max(1, batch_size)
        self.model_name = model_name
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(f"{model_name}: the tokenizer has no chat template", "--model")
        config = model.config
        self.max_positions = int(getattr(config, "max_position_embeddings", 0) or 1 << 30)
        self.num_layers = int(config.num_hidden_layers)
        self.eos_ids = _eos_ids(model, tokenizer) | frozenset(stop_ids)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)
        self.threads = ThreadChooser(dtype=next(model.parameters()).dtype, hidden=config.hidden_size,
                                     out=getattr(config, "intermediate_size", 4 * config.hidden_size))
        # a prompt-learning adapter builds its own cache inside forward: only generate() drives it
        self.plain = _is_prompt_learning(model)
        self.threads.maybe_adjust()
        self.forward = None if self.plain else make_forward(model)
        self.threads.restore()
        self._prefixes: dict[tuple[int, ...], list[tuple[Any, Any]]] = {}
        # byte-level vocabularies split characters across tokens: keep every row's bytes valid UTF-8
        self.utf8 = Utf8Guard.for_tokenizer(tokenizer)

    # ------------------------------------------------------------ public
    def generate(self, requests: list[Request], cancel: threading.Event | None = None,
                 on_tokens: TokenCounter | None = None) -> list[Completion]:
        """One completion per request, in order. A request that cannot run gets an error completion.

        ``cancel``: once set, :class:`Cancelled` is raised before the next decode step. ``on_tokens``:
        the tokens processed so far, as they are (a live progress count; each completion's usage, the
        exact one, is the same sum)."""
        started = time.perf_counter()
        results: list[Completion | None] = [None] * len(requests)
        rows: list[Row] = []
        for i, request in enumerate(requests):
            row_or_error = self._prepare(i, request)
            if isinstance(row_or_error, Completion):
                results[i] = row_or_error
            elif row_or_error.max_new <= 0:  # max_tokens 0: nothing to generate
                row_or_error.finish = "length"
                results[i] = self._completion(row_or_error, 0.0)
            else:
                rows.append(row_or_error)
        try:
            with torch.inference_mode():
                run = self._run_plain if self.plain else self._run
                for row in run(rows, cancel, on_tokens):
                    results[row.index] = self._completion(row, time.perf_counter() - started)
        finally:
            self.threads.restore()
        return [r for r in results if r is not None]

    def generate_ids(self, prompts: list[list[int]], max_new_tokens: int) -> list[tuple[list[int], str]]:
        """Greedy continuations of already-tokenized prompts: (new token ids, finish reason) each, in order.

        For callers that render prompts themselves (eval renders them exactly as fine-tuning did). The
        ids end with the stop token when the row stopped (``"stop"``); ``"length"`` otherwise.
        """
        request = Request.chat("", temperature=0.0, max_tokens=max_new_tokens)
        rows = [Row(i, request, list(prompt), 0, min(max_new_tokens, self.max_positions - len(prompt)))
                for i, prompt in enumerate(prompts)]
        done: list[tuple[list[int], str]] = [([], "length")] * len(rows)
        runnable = [row for row in rows if row.max_new > 0]
        try:
            with torch.inference_mode():
                for row in (self._run_plain(runnable) if self.plain else self._run(runnable)):
                    done[row.index] = (row.generated, row.finish or "length")
        finally:
            self.threads.restore()
        return done

    # ------------------------------------------------------------ preparing
    def _prepare(self, index: int, request: Request) -> Row | Completion:
        try:
            text = self.tokenizer.apply_chat_template(request.message_dicts(), add_generation_prompt=True,
                                                      tokenize=False)
        except Exception as exc:  # noqa: BLE001 - e.g. a template that rejects a role: this request fails
            return Completion.failure(type(exc).__name__, f"chat template: {exc}", model=self.model_name)
        prompt = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        room = self.max_positions - len(prompt)
        if room <= 0:
            return Completion.failure("ContextLengthExceeded", f"the prompt has {len(prompt)} tokens; the model "
                                      f"takes {self.max_positions} in all", model=self.model_name,
                                      usage=Usage(len(prompt), 0))
        seed = request.seed if request.seed is not None else secrets.randbits(63)
        window = 0
        if request.stop:
            window = max(len(s) for s in request.stop) + 4
        return Row(index, request, prompt, seed & 0xFFFFFFFFFFFFFFFF, min(request.max_tokens, room),
                   stop_window=window)

    # ------------------------------------------------------------ the loop
    def _run(self, rows: list[Row], cancel: threading.Event | None = None,
             on_tokens: TokenCounter | None = None) -> Iterator[Row]:
        """Generate every row; yield each as it finishes."""
        waiting = deque(sorted(rows, key=lambda r: len(r.prompt)))
        batch = Batch(self)
        count = on_tokens or (lambda tokens: None)
        while waiting or batch.live:
            if cancel is not None and cancel.is_set():
                raise Cancelled
            self.threads.maybe_adjust()
            if waiting and batch.live <= self.batch_size * REFILL_FRACTION:
                batch.compact()
                admitted = [waiting.popleft() for _ in range(min(len(waiting), self.batch_size - batch.live))]
                yield from batch.admit(admitted)
                count(sum(len(row.prompt) + 1 for row in admitted))  # the prompts and each one's first token
            if batch.live:
                live = batch.live
                yield from batch.step()
                count(live)

    def _run_plain(self, rows: list[Row], cancel: threading.Event | None = None,
                   on_tokens: TokenCounter | None = None) -> Iterator[Row]:
        """``model.generate`` in left-padded batches of equal sampling parameters (prompt-learning adapters);
        ``on_tokens`` hears of each batch as it ends."""
        groups: dict[tuple[float, float], list[Row]] = {}
        for row in sorted(rows, key=lambda r: len(r.prompt)):
            groups.setdefault((max(0.0, row.request.temperature), row.request.top_p), []).append(row)
        for (temperature, top_p), group in groups.items():
            for start in range(0, len(group), self.batch_size):
                batch = group[start:start + self.batch_size]
                yield from self._generate_plain(batch, temperature, top_p, cancel)
                if on_tokens is not None:
                    on_tokens(sum(len(row.prompt) + len(row.generated) for row in batch))

    def _generate_plain(self, rows: list[Row], temperature: float, top_p: float,
                        cancel: threading.Event | None = None) -> Iterator[Row]:
        self.threads.maybe_adjust()
        ids, mask = _left_padded([r.prompt for r in rows], self.pad_id)
        width = ids.shape[1]
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 \
            else {"do_sample": False}
        if cancel is not None:
            sampling["stopping_criteria"] = _stop_when(cancel)
        torch.manual_seed(rows[0].seed)
        out = self.model.generate(input_ids=ids, attention_mask=mask.long(), pad_token_id=self.pad_id,
                                  max_new_tokens=max(r.max_new for r in rows), **sampling)
        if cancel is not None and cancel.is_set():
            raise Cancelled
        for row, tokens in zip(rows, out[:, width:].tolist()):
            for token in tokens:
                # model.generate cannot be steered token by token; the state still lets the end be held back
                if self.utf8 is not None:
                    row.utf8 = self.utf8.step(row.utf8, token) or row.utf8
                if self.check_finished(row, token):
                    break
            yield row

    # ------------------------------------------------------------ prefill
    def prefill_inputs(self, rows: list[Row]) -> tuple[Any, Any, Any, Any]:
        """The cache and inputs that prefill ``rows``: (cache, ids [B, S], mask [B, P+S], positions [B, S]).

        A prefix common to all prompts (chat templates put the same system prompt in front of every
        request) is computed once, kept across calls, and shared by all rows: its keys and values are
        copied into every row at columns 0..P, the rest of each prompt follows, left-padded. The
        prefix is the rows' longest common prefix, or a longer one already kept.
        """
        prompts = [r.prompt for r in rows]
        shared = _common_prefix_length(prompts) if len(rows) > 1 else 0
        shared = max(shared if shared >= MIN_SHARED_PREFIX else 0, self._kept_prefix_length(prompts))
        cache = self.forward.new_cache(self.num_layers)
        if shared:
            cache.fill(self._prefix_kv(tuple(rows[0].prompt[:shared])), len(rows))
        ids, suffix_mask = _left_padded([r.prompt[shared:] for r in rows], self.pad_id)
        mask = torch.cat([torch.ones((len(rows), shared), dtype=torch.bool), suffix_mask], dim=1)
        positions = (shared + suffix_mask.long().cumsum(-1) - 1).clamp(min=0)
        return cache, ids, mask, positions

    def _kept_prefix_length(self, prompts: list[list[int]]) -> int:
        """The longest kept prefix that starts every prompt (and leaves each a token of its own)."""
        best = 0
        for prefix in self._prefixes:
            n = len(prefix)
            if n > best and all(len(p) > n and tuple(p[:n]) == prefix for p in prompts):
                best = n
        return best

    def _prefix_kv(self, prefix: tuple[int, ...]) -> list[tuple[Any, Any]]:
        kv = self._prefixes.pop(prefix, None)
        if kv is None:
            cache = self.forward.new_cache(self.num_layers)
            length = len(prefix)
            self.forward(torch.tensor([prefix]), torch.ones((1, length), dtype=torch.bool),
                         torch.arange(length)[None], cache)
            kv = [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]
        self._prefixes[prefix] = kv  # most recently used last
        while len(self._prefixes) > PREFIX_CACHE_SIZE:
            self._prefixes.pop(next(iter(self._prefixes)))
        return kv

    # ------------------------------------------------------------ finishing
    def check_finished(self, row: Row, token: int) -> bool:
        """Append ``token`` to ``row``; say whether the row is done (and why, in ``row.finish``)."""
        row.generated.append(token)
        if token in self.eos_ids:
            row.finish = "stop"
        elif row.stop_window and self._hit_stop(row):
            row.finish = "stop"
        elif len(row.generated) >= row.max_new:
            row.finish = "length"
        return row.finish is not None

    def _hit_stop(self, row: Row) -> bool:
        # the newest token ends any stop string that just appeared, so a short tail holds all of it
        tail = self.tokenizer.decode(row.generated[-row.stop_window:], skip_special_tokens=True)
        return any(stop in tail for stop in row.request.stop)

    def _completion(self, row: Row, latency: float) -> Completion:
        tokens = row.generated
        if tokens and tokens[-1] in self.eos_ids:
            tokens = tokens[:-1]
        text = complete_text(self.tokenizer.decode(tokens, skip_special_tokens=True), row.utf8)
        cut = min((at for at in (text.find(s) for s in row.request.stop) if at >= 0), default=-1)
        if cut >= 0:
            text = text[:cut]
        return Completion(text=text, finish_reason=row.finish or "length", model=self.model_name,
                          usage=Usage(len(row.prompt), len(row.generated)), latency_s=latency)


def _stop_when(cancel: threading.Event) -> Any:
    """Stopping criteria ending ``model.generate`` at the step after ``cancel`` is set."""
    from transformers import StoppingCriteria, StoppingCriteriaList  # loaded already: generate is its own

    class WhenCancelled(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool)

    return StoppingCriteriaList([WhenCancelled()])


def _common_prefix_length(prompts: list[list[int]]) -> int:
    """Length of the longest common prefix, leaving every prompt at least one token of its own."""
    shortest = min(len(p) for p in prompts)
    first = prompts[0]
    length = 0
    while length < shortest - 1 and all(p[length] == first[length] for p in prompts):
        length += 1
    return length


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return frozenset(ids)

