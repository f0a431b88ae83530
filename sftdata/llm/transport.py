"""The HTTP exchange of the openai backend: each attempt is one aiohttp POST, with the SDK's headers
and the SDK's errors.

The SDK's ``client.post`` builds an httpx2 request (URL parsing, header merging, pydantic request
options, auth hooks) and runs it through its httpx-over-aiohttp adapter, which wraps the reply in an
httpx2 response again: under cProfile, about 3/4 of the layer's CPU per request on loopback, ~3x the
aiohttp POST itself (docs/benchmarks.md, client_overhead). The SDK client is still built for each
endpoint, once, for what it knows: its default and auth headers, and its exception classes and
messages (``RateLimitError``, ``InternalServerError``, ... with the reply's ``Retry-After``), made
from the same status, headers and body only when an attempt fails.
"""

from __future__ import annotations

import logging

import aiohttp
import httpx2
import openai
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from ..core.errors import redact

# under the SDK's "openai" logger, so that its switch (OPENAI_LOG=debug) shows each exchange as it
# did when the SDK sent them; never a header (the key is one), the URL redacted
_sdk_log = logging.getLogger("openai.sftdata")


class MalformedReply(Exception):
    """The endpoint answered 200 with something that is not a usable chat completion."""


class ReplyTooLarge(MalformedReply):
    """The reply body is longer than ``--max-reply-bytes``: the attempt fails without reading it all."""


class ChatEndpoint:
    """One endpoint's chat-completions URL, query and headers, worked out once from its SDK client."""

    def __init__(self, client: openai.AsyncOpenAI, query: dict[str, str]) -> None:
        self.client = client
        self.url = str(client.base_url).rstrip("/") + "/chat/completions"
        self.query = query or None
        # the SDK's own headers (User-Agent, X-Stainless-*), its bearer key, then default_headers
        # (Basic authorization from user:password@ replaces the key, as in the SDK's merge)
        headers = {**client.auth_headers, **client.default_headers}
        self.headers = {name: value for name, value in headers.items() if isinstance(value, str)}
        # HTTP(S)_PROXY / NO_PROXY, as the SDK's httpx2 client reads them: looked up here once, where
        # a session with trust_env looks them up (and ~/.netrc) in a thread for every request
        try:
            self.proxy, self.proxy_auth = get_env_proxy_for_url(URL(self.url))
        except LookupError:
            self.proxy, self.proxy_auth = None, None

    def request(self) -> httpx2.Request:
        """The attempt as the SDK's exceptions carry it (only built when one is raised)."""
        return httpx2.Request("POST", self.url, params=self.query)

    def status_error(self, status: int, headers: list[tuple[str, str]], body: bytes) -> openai.APIStatusError:
        response = httpx2.Response(status, headers=headers, content=body, request=self.request())
        return self.client._make_status_error_from_response(response)  # the SDK's class and message


class ChatTransport:
    """An aiohttp session with ``concurrency`` connections, opened on the first request (inside the
    running event loop, as the SDK's aiohttp client does)."""

    def __init__(self, concurrency: int, timeout: float, max_reply_bytes: int) -> None:
        self.max_reply_bytes = max_reply_bytes
        # the same trust store as the SDK's clients (SSL_CERT_FILE / SSL_CERT_DIR honored)
        self.ssl_context = httpx2.create_ssl_context(trust_env=True)
        # connect: waiting for a pooled connection and connecting; sock_read: between two reads
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_connect=min(timeout, 10.0),
                                              sock_read=timeout)
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._concurrency, ssl=self.ssl_context)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def post(self, endpoint: ChatEndpoint, body: bytes) -> bytes:
        """The reply body of a 2xx answer; otherwise the SDK's exception for what went wrong."""
        try:
            async with self._open().post(endpoint.url, data=body, headers=endpoint.headers,
                                         params=endpoint.query, proxy=endpoint.proxy, proxy_auth=endpoint.proxy_auth,
                                         allow_redirects=False) as response:
                if _sdk_log.isEnabledFor(logging.DEBUG):
                    _sdk_log.debug('HTTP Request: POST %s "%d %s"', redact(str(response.url)), response.status,
                                   response.reason)
                if not 200 <= response.status < 300:
                    error_body = await self._read(response, stop_at_cap=True)
                    raise endpoint.status_error(response.status, list(response.headers.items()), error_body)
                return await self._read(response, stop_at_cap=False)
        except (openai.APIStatusError, ReplyTooLarge):
            raise
        except TimeoutError as exc:  # aiohttp's connect and read timeouts
            raise openai.APITimeoutError(request=endpoint.request()) from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:  # refused, reset, short read, bad chunking
            raise openai.APIConnectionError(request=endpoint.request()) from exc

    async def _read(self, response: aiohttp.ClientResponse, stop_at_cap: bool) -> bytes:
        """The body, never read past ``--max-reply-bytes``: an error body is cut there, a reply over it
        is a ReplyTooLarge."""
        cap = self.max_reply_bytes
        declared = response.content_length
        if not stop_at_cap and declared is not None and declared > cap:
            raise ReplyTooLarge(f"reply body of {declared} bytes is over --max-reply-bytes {cap}")
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > cap:
                if stop_at_cap:
                    chunks.append(chunk[:cap - size + len(chunk)])
                    break
                raise ReplyTooLarge(f"reply body over --max-reply-bytes {cap} (read {size} bytes, stopped)")
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
