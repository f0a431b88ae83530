"""The openai-compatible backend: the SDK's headers and errors over one aiohttp session (transport.py), with our own retry loop.

The SDK's retries are off (``max_retries=0``) so that every attempt is counted, Retry-After is
honored exactly, and a request that fails for good is reported rather than raised.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import re
import time
from dataclasses import dataclass

import httpx2
import openai

from ..core.errors import redact
from .base import Completion, Request, Usage, gather_or_cancel
from .endpoint import check_base_url
from .transport import ChatEndpoint, ChatTransport, MalformedReply, ReplyTooLarge

__all__ = ["MalformedReply", "OpenAIBackend", "ReplyTooLarge", "RetryPolicy"]


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5  # seconds; doubles each attempt, with full jitter
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # a server asking for longer than this is waited on only this long

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        jittered = backoff / 2 + rng.uniform(0, backoff / 2)
        if retry_after is not None:
            return min(self.max_retry_after, max(retry_after, 0.0))
        return jittered


log = logging.getLogger(__name__)
# parameters a request can do without (the reply is still an answer): dropped when an endpoint refuses them
_OPTIONAL_PARAMS = ("seed", "top_p", "stop")

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class AttemptTimeout(Exception):
    """No complete reply within ``--timeout`` seconds of the attempt's start (headers and body
    together: a server trickling its body byte by byte is cut off too)."""


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after")
    if value is None:
        ms = response.headers.get("retry-after-ms")
        return float(ms) / 1000 if ms and ms.replace(".", "", 1).isdigit() else None
    try:
        return float(value)
    except ValueError:
        return None


def _describe(exc: BaseException) -> str:
    """The exception's message, with its root cause when the message hides it: the SDK's
    "Connection error." says nothing of a refused connection or a reset (transport.py)."""
    root, seen = exc, 0
    while root.__cause__ is not None and seen < 10:
        root, seen = root.__cause__, seen + 1
    text = str(exc)
    if root is not exc and str(root) and str(root) not in text:
        text = f"{text} (cause: {type(root).__name__}: {root})"
    hint = _missing_v1_hint(exc)
    return f"{text}; {hint}" if hint else text


def _missing_v1_hint(exc: BaseException) -> str:
    """A 404 from a base URL without /v1 (vLLM, Ollama, llama.cpp and OpenAI serve under /v1) is
    nearly always that: name the URL the user probably meant."""
    if not isinstance(exc, openai.NotFoundError):
        return ""
    url = str(exc.request.url).split("?", 1)[0]
    base = url.removesuffix("/chat/completions")
    if base == url or "/v1" in base.split("://", 1)[-1]:
        return ""
    return f"did you mean --base-url {base}/v1 ?"


def _is_retryable(exc: Exception) -> bool:
    if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError, MalformedReply, AttemptTimeout)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


_THINK_BLOCK = re.compile(r"^\s*<think>.*?</think>\s*", re.DOTALL)


def split_thinking(text: str, finish_reason: str) -> tuple[str, str, str]:
    """(answer, reasoning, finish_reason): a reasoning model's leading ``<think>...</think>`` block
    taken out of the answer, never parsed as it. A think block that never closed is no answer at all:
    empty, and truncated."""
    match = _THINK_BLOCK.match(text)
    if match:
        reasoning = match.group(0).strip()[len("<think>"):-len("</think>")].strip()
        return text[match.end():], reasoning, finish_reason
    if text.lstrip().startswith("<think>"):
        return "", text.lstrip()[len("<think>"):].strip(), "length"
    return text, "", finish_reason


def strip_thinking(text: str, finish_reason: str) -> tuple[str, str]:
    """The answer without a leading ``<think>...</think>`` block (see :func:`split_thinking`)."""
    answer, _, finish_reason = split_thinking(text, finish_reason)
    return answer, finish_reason


def _parse_completion(body: bytes, default_model: str) -> Completion:
    """A chat completion from the reply body; anything unusable is a MalformedReply (retried)."""
    try:
        reply = json.loads(body)
    except ValueError as exc:  # also UnicodeDecodeError
        raise MalformedReply(f"unparsable body: {exc}") from None
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedReply("reply has no choices")
    message = choices[0].get("message")
    text = message.get("content") if isinstance(message, dict) else None
    finish_reason = str(choices[0].get("finish_reason") or "stop")
    if text is None and finish_reason == "length":
        # a reasoning model that spent max_tokens thinking (reasoning_content) and never answered:
        # a truncated reply, reported as such; retrying the same request would only pay again
        text = ""
    if not isinstance(text, str):
        raise MalformedReply("reply has no message content")
    text, reasoning, finish_reason = split_thinking(text, finish_reason)
    # DeepSeek / vLLM / Ollama send the thinking beside the content, under one of these names
    separate = next((message[k] for k in ("reasoning_content", "reasoning") if isinstance(message.get(k), str)), "")
    reasoning = "\n\n".join(part for part in (separate.strip(), reasoning) if part)
    # a \ud800-style escape in the JSON body decodes to half a character, which no UTF-8 file
    # (journal, cache) can hold: it would stop the run mid-write
    text = _LONE_SURROGATE.sub("\ufffd", text)
    usage = reply.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    model, request_id = reply.get("model"), reply.get("id")
    return Completion(text=text, finish_reason=finish_reason,
                      usage=Usage(_count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))),
                      model=model if isinstance(model, str) and model else default_model,
                      request_id=request_id if isinstance(request_id, str) else None,
                      reasoning=_LONE_SURROGATE.sub("\ufffd", reasoning))


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


class OpenAIBackend:
    name = "openai"

    def __init__(self, base_urls: list[str], model: str, api_key: str | None, concurrency: int = 16,
                 timeout: float = 120.0, retry: RetryPolicy | None = None, seed: int = 0,
                 max_reply_bytes: int = 4 * 1024 * 1024, token_param: str = "max_tokens") -> None:
        self.model = model
        # what each client (endpoint) was found to reject, learned from its 400s and kept for the run:
        # the name of the reply-length parameter (newer OpenAI models refuse max_tokens) and the
        # optional parameters it does not accept (some servers refuse `seed`)
        self._token_param: dict[int, str] = {}
        self._default_token_param = token_param
        self._dropped: dict[int, set[str]] = {}
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.max_reply_bytes = max_reply_bytes
        self._semaphore = asyncio.Semaphore(concurrency)
        self._rng = random.Random(seed)
        # Each attempt is one aiohttp POST (transport.py): the SDK's own `post` over its aiohttp
        # adapter cost ~3x the POST in CPU (bench/client_overhead.py). The SDK clients give the
        # headers and the exceptions; their httpx2 client never sends anything.
        self._transport = ChatTransport(concurrency, timeout, max_reply_bytes)
        self._sdk_http = httpx2.AsyncClient(verify=self._transport.ssl_context)
        self._clients = [self._endpoint(check_base_url(url), api_key) for url in base_urls]
        self._next_replica = itertools.count()

    def _endpoint(self, endpoint, api_key: str | None) -> ChatEndpoint:  # noqa: ANN001 - an Endpoint
        # user:password@ in the URL is HTTP Basic authorization (it replaces the bearer key); the
        # query string (?key=..., ?api-version=...) goes with every request
        headers = {"Authorization": endpoint.basic_auth} if endpoint.basic_auth else None
        # "EMPTY" is what local servers (vLLM, Ollama) accept; the SDK refuses a missing key
        client = openai.AsyncOpenAI(base_url=endpoint.url, api_key=api_key or "EMPTY", max_retries=0,
                                    http_client=self._sdk_http, default_headers=headers,
                                    default_query=endpoint.query or None)
        return ChatEndpoint(client, endpoint.query)

    async def complete(self, requests: list[Request]) -> list[Completion]:
        return await gather_or_cancel(self.complete_one(r) for r in requests)

    async def complete_one(self, request: Request) -> Completion:
        async with self._semaphore:
            replica = next(self._next_replica)
            started = time.perf_counter()
            last_exc: Exception | None = None
            for attempt in range(1, self.retry.max_attempts + 1):
                index = (replica + attempt - 1) % len(self._clients)  # a retry moves to the next replica
                try:
                    completion = await self._send_within_timeout(self._clients[index], request)
                    completion.attempts = attempt
                    completion.latency_s = time.perf_counter() - started
                    return completion
                except Exception as exc:  # noqa: BLE001 - classified below; unknown ones are not retried
                    last_exc = exc
                    if not _is_retryable(exc) or attempt == self.retry.max_attempts:
                        break
                    await asyncio.sleep(self.retry.delay(attempt, _retry_after(exc), self._rng))
            assert last_exc is not None
            return Completion.failure(type(last_exc).__name__, redact(_describe(last_exc)), model=self.model,
                                      attempts=attempt, latency_s=time.perf_counter() - started)

    async def _send_within_timeout(self, client: ChatEndpoint, request: Request) -> Completion:
        # the HTTP timeouts bound each read, not the whole reply: a body trickling one byte a
        # second never trips them. The deadline covers the whole attempt.
        try:
            async with asyncio.timeout(self.timeout):
                return await self._send(client, request)
        except TimeoutError:
            raise AttemptTimeout(f"no complete reply within --timeout {self.timeout:g} s") from None

    def _body(self, client: ChatEndpoint, request: Request) -> dict:
        key = id(client)
        body: dict = {
            "model": self.model, "messages": request.message_dicts(), "temperature": request.temperature,
            "top_p": request.top_p, self._token_param.get(key, self._default_token_param): request.max_tokens,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        for name in self._dropped.get(key, ()):
            body.pop(name, None)
        return body

    def _adapt_to_rejection(self, client: ChatEndpoint, exc: openai.BadRequestError, body: dict) -> bool:
        """Learn from a 400 that names a parameter this endpoint refuses; True when resending can help."""
        message = str(exc)
        key = id(client)
        if "max_completion_tokens" in message and "max_tokens" in body:
            self._token_param[key] = "max_completion_tokens"
            log.warning("endpoint %s refuses max_tokens: sending max_completion_tokens from now on",
                        redact(client.url))
            return True
        if "max_tokens" in message and "max_completion_tokens" in body and "unsupported" in message.lower():
            self._token_param[key] = "max_tokens"
            return True
        for name in _OPTIONAL_PARAMS:
            if name in body and re.search(rf"(unsupported|unrecognized|unknown|not supported).*'?{name}'?",
                                          message, re.IGNORECASE):
                self._dropped.setdefault(key, set()).add(name)
                log.warning("endpoint %s refuses the optional parameter '%s': dropped from now on",
                            redact(client.url), name)
                return True
        return False

    async def _send(self, client: ChatEndpoint, request: Request) -> Completion:
        for _ in range(len(_OPTIONAL_PARAMS) + 2):  # each rejection teaches one thing; bounded
            body = self._body(client, request)
            try:
                return await self._post(client, body)
            except openai.BadRequestError as exc:
                if not self._adapt_to_rejection(client, exc, body):
                    raise
        return await self._post(client, self._body(client, request))

    async def _post(self, client: ChatEndpoint, body: dict) -> Completion:
        # the body is read chunk by chunk and never past --max-reply-bytes (transport.py)
        reply = await self._transport.post(client, json.dumps(body).encode())
        return _parse_completion(reply, self.model)

    async def aclose(self) -> None:
        await self._transport.aclose()
        await self._sdk_http.aclose()
