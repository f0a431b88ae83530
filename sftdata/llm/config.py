"""The ``llm:`` settings (LLMConfig: the ``llm`` section of ``sftdata run`` and every command's LLM options)
and the backends by name (BACKENDS). Apart from the client (``llm/client.py``, which re-exports both) so
that reading and checking a config imports neither the client nor what it builds on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..core.errors import ConfigError
from ..core.settings import setting
from .endpoint import check_base_url

if TYPE_CHECKING:
    from .base import Backend


@dataclass
class LLMConfig:
    """Resolved LLM options: the ``llm:`` section of ``sftdata run`` and the LLM options of every command
    that calls a model. ``api_key`` is never written anywhere (see :meth:`public`)."""

    base_urls: list[str] = setting(
        list, key="base_url", option="--base-url", envvar="OPENAI_BASE_URL",
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (vLLM), https://api.openai.com/v1. "
             "Repeat to spread requests over replicas. None: the embedded local model.")
    model: str | None = setting(None, envvar="SFTDATA_MODEL",
                                # without an endpoint, a directory (beside the config, if it is there)
                                path=lambda config: config.backend == "local", must_exist=False,
                                help="Model name at the endpoint, or a local HF model directory. "
                                     "Default: the embedded SmolLM2-135M-Instruct.")
    api_key: str | None = setting(None, hashed=False, envvar="OPENAI_API_KEY",
                                  help="API key. Never written to the run directory, logs or cache.")
    adapter: str | None = setting(None, cli=False, config=False, help="A PEFT adapter on the local model.")
    concurrency: int = setting(16, hashed=False, help="Requests in flight at once.")
    timeout: float = setting(120.0, hashed=False, help="Seconds one attempt may take, reply body included, "
                                                       "before it is abandoned and retried.")
    max_attempts: int = setting(6, hashed=False, help="Attempts per request (429, 5xx, timeouts, resets, "
                                                      "malformed replies are retried).")
    retry_base: float = setting(0.5, hashed=False, help="First backoff delay in seconds; doubles per attempt, "
                                                        "with jitter. Retry-After from the server wins.")
    fail_after: int = setting(5, hashed=False, cli=False, config=False,
                              help="Consecutive failed requests that make the endpoint unusable (exit 3).")
    price_in: float | None = setting(None, help="USD per million prompt tokens (for the cost estimate).")
    price_out: float | None = setting(None, help="USD per million completion tokens.")
    max_cost: float | None = setting(None, hashed=False, help="Stop cleanly before spending more than this (USD).")
    max_requests: int | None = setting(None, hashed=False, help="Stop cleanly after this many requests sent.")
    cache: bool = setting(True, flag="--cache/--no-cache",
                          help="Read and write the response cache (--no-cache: neither).")
    batch_size: int = setting(32, hashed=False, help="Local model: prompts generated together in one batch.")
    backend: str | None = setting(
        None, hashed=False,  # follows from base_url (validate() rejects a mismatch): no output changes with it
        help="LLM backend: openai (an endpoint) or local (the embedded or a local HF model). "
             "Default: openai when --base-url is given, else local.")
    max_reply_bytes: int = setting(4 * 1024 * 1024, hashed=False,
                                   help="Longest reply body read from the endpoint; a longer one is a failed "
                                        "attempt (retried), never read whole.")
    ray: str | None = setting(
        None, hashed=False, metavar="ADDRESS|auto|local",  # same requests, same answers: no output changes
        help="Send the requests from Ray workers (needs sftdata[ray]; docs/cluster.md): 'local' starts a Ray "
             "instance here, 'auto' joins this node's cluster, or the head's address. Cache, budget and "
             "journals stay with this process, so the budget holds for the whole cluster.")
    ray_workers: int | None = setting(None, hashed=False,
                                      help="With --ray: worker actors, each with --concurrency requests in "
                                           "flight over its share of the --base-url replicas (default: one "
                                           "per node).")
    token_param: str = setting("max_tokens", hashed=False, choices=("max_tokens", "max_completion_tokens"),
                               help="Name of the reply-length parameter sent to the endpoint. Newer OpenAI "
                                    "models want max_completion_tokens; a 400 saying so switches to it anyway.")
    reasoning: str = setting("strip", choices=("strip", "keep"),
                             help="A reasoning model's thinking (reasoning_content, or a <think> block before "
                                  "the answer): strip drops it, keep stores it beside the answer (generated and "
                                  "augmented records' meta.reasoning). Never parsed as the answer either way.")

    def __post_init__(self) -> None:
        if self.backend is None:
            self.backend = "openai" if self.base_urls else "local"

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("api_key")
        data["backend"] = data.pop("backend")  # last, where it always was in config.json
        return data

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r} (one of: {', '.join(BACKENDS)})", "--backend")
        if self.backend == "openai" and not self.base_urls:
            raise ConfigError("the openai backend needs an endpoint", "--base-url")
        if self.backend == "local" and self.base_urls:
            raise ConfigError("the local backend runs in this process and takes no endpoint; "
                              "drop --base-url or choose --backend openai", "--backend")
        for name in ("concurrency", "max_attempts", "batch_size", "fail_after"):
            if getattr(self, name) < 1:
                raise ConfigError("must be at least 1", f"--{name.replace('_', '-')}")
        if self.timeout <= 0:
            raise ConfigError("must be positive", "--timeout")
        if self.max_requests is not None and self.max_requests < 1:
            raise ConfigError("must be at least 1", "--max-requests")
        for name in ("price_in", "price_out", "max_cost"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError("must not be negative", f"--{name.replace('_', '-')}")
        if self.max_cost is not None and (self.price_in is None or self.price_out is None):
            raise ConfigError("needs --price-in and --price-out to know what a request costs", "--max-cost")
        if self.base_urls and not self.model:
            raise ConfigError("an endpoint needs a model name", "--model")
        if self.ray is not None and self.backend != "openai":
            raise ConfigError("drives OpenAI-compatible endpoints from Ray workers (run a vLLM server per "
                              "node); the local backend runs in this process", "--ray")
        if self.ray_workers is not None and (self.ray is None or self.ray_workers < 1):
            raise ConfigError("needs --ray and must be at least 1", "--ray-workers")
        if self.max_reply_bytes < 1024:
            raise ConfigError("must be at least 1024", "--max-reply-bytes")
        for url in self.base_urls:
            check_base_url(url)


def _openai_backend(config: LLMConfig) -> Backend:
    from .openai_backend import OpenAIBackend, RetryPolicy

    return OpenAIBackend(config.base_urls, config.model or "", config.api_key,
                         concurrency=config.concurrency, timeout=config.timeout,
                         retry=RetryPolicy(max_attempts=config.max_attempts, base_delay=config.retry_base),
                         max_reply_bytes=config.max_reply_bytes, token_param=config.token_param)


def _local_backend(config: LLMConfig) -> Backend:
    from .local.engine import LocalBackend

    return LocalBackend(model=config.model, adapter=config.adapter, batch_size=config.batch_size)


# The backends by the name ``llm.backend`` takes. A new backend is a factory here (imports inside
# it: the core path must not import an SDK it does not use) plus its module; see docs/architecture.md.
BACKENDS: dict[str, Callable[[LLMConfig], Backend]] = {
    "openai": _openai_backend,
    "local": _local_backend,
}
