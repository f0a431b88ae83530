"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions protocol, for tests and benchmarks.

It answers from a function or a script, counts every request, and injects faults:

    server = OpenAIServer(reply=lambda body, n: "text")      # or script=["a", "b", ...]
    server.start(); url = server.url                          # "http://127.0.0.1:PORT/v1"
    server.inject("429", count=2, retry_after=1)              # next 2 requests get a 429
    server.inject("reset"); server.inject("slow", delay=5)
    server.stop()

Fault kinds: 429 (with ``retry_after`` or without), 500, 502, 503, reset (connection closed
mid-body), slow (``delay`` seconds before answering), a :class:`Reply` with ``trickle`` (its body one
byte at a time), malformed (200 with a broken JSON body),
empty_choices, length (finish_reason "length"), and any reply the function returns as a
:class:`Reply`. ``latency`` delays every reply. Written on asyncio so that a few hundred
concurrent connections cost little; it runs its own loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    text: str = ""
    finish_reason: str = "stop"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes | None = None
    delay: float = 0.0
    reset: bool = False
    trickle: float = 0.0  # seconds between the body's bytes (headers go at once)


@dataclass
class Fault:
    kind: str
    retry_after: float | None = None
    delay: float = 0.0


ReplyFn = Callable[[dict, int], "str | Reply"]


def _quickack(sock: object) -> None:
    # Linux delays ACKs up to 40 ms; a client that sends headers and body in two writes would
    # then wait on every kept-alive request, and the server, not the client, would be measured.
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        pass


class OpenAIServer:
    def __init__(self, reply: ReplyFn | None = None, script: list[str | Reply] | None = None,
                 latency: float = 0.0, model: str = "test-model") -> None:
        self._reply_fn = reply
        self._script = list(script or [])
        self.latency = latency
        self.model = model
        self.bodies: list[dict] = []  # every chat request body received, in arrival order
        self.auth_headers: list[str] = []
        self.paths: list[str] = []  # the request target of every chat request (query string included)
        self.count = 0  # chat requests received, faults included
        self.faults: collections.deque[Fault] = collections.deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ------------------------------------------------------------ control
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def inject(self, kind: str, count: int = 1, retry_after: float | None = None, delay: float = 0.0) -> None:
        with self._lock:
            self.faults.extend(Fault(kind, retry_after, delay) for _ in range(count))

    def start(self, port: int = 0) -> OpenAIServer:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", port, backlog=1024, reuse_address=True))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(5)
        self._loop = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------ HTTP
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        try:
            while True:
                _quickack(sock)
                head = await reader.readuntil(b"\r\n\r\n")
                _quickack(sock)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in
                           (line.split(":", 1) for line in lines[1:] if ":" in line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                keep_going = await self._route(method, path, headers, body, writer)
                if not keep_going:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    async def _route(self, method: str, path: str, headers: dict, body: bytes,
                     writer: asyncio.StreamWriter) -> bool:
        route = path.split("?", 1)[0].rstrip("/")
        if method == "GET" and route.endswith("/models"):
            return await self._send(writer, 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]})
        if not (method == "POST" and route.endswith("/chat/completions")):
            return await self._send(writer, 404, {"error": {"message": f"no route {path}"}})
        request = json.loads(body or b"{}")
        with self._lock:
            self.count += 1
            number = self.count
            self.bodies.append(request)
            self.auth_headers.append(headers.get("authorization", ""))
            self.paths.append(path)
            fault = self.faults.popleft() if self.faults else None
        if self.latency:
            await asyncio.sleep(self.latency)
        if fault is not None:
            return await self._fault(fault, request, writer)
        reply = self._make_reply(request, number)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.reset:
            return await self._reset(writer)
        if reply.trickle:
            return await self._trickle(writer, self._completion(request, reply.text, "stop"), reply.trickle)
        if reply.raw_body is not None:
            return await self._send_raw(writer, reply.status, reply.raw_body, reply.headers)
        if reply.status != 200:
            return await self._send(writer, reply.status, {"error": {"message": reply.text or "error"}}, reply.headers)
        return await self._send(writer, 200, self._completion(request, reply.text, reply.finish_reason), reply.headers)

    def _make_reply(self, request: dict, number: int) -> Reply:
        if self._reply_fn is not None:
            out = self._reply_fn(request, number)
        else:
            with self._lock:
                out = self._script.pop(0) if self._script else "OK"
        return out if isinstance(out, Reply) else Reply(text=out)

    async def _fault(self, fault: Fault, request: dict, writer: asyncio.StreamWriter) -> bool:
        kind = fault.kind
        if kind in ("429", "500", "502", "503"):
            headers = {"retry-after": str(fault.retry_after)} if fault.retry_after is not None else {}
            return await self._send(writer, int(kind), {"error": {"message": f"injected {kind}"}}, headers)
        if kind == "reset":
            return await self._reset(writer)
        if kind == "slow":
            await asyncio.sleep(fault.delay)
            return await self._send(writer, 200, self._completion(request, "late", "stop"))
        if kind == "malformed":
            return await self._send_raw(writer, 200, b'{"id": "x", "choices": [{"mess', {})
        if kind == "empty_choices":
            body = self._completion(request, "", "stop")
            body["choices"] = []
            return await self._send(writer, 200, body)
        if kind == "length":
            text = self._make_reply(request, self.count).text
            return await self._send(writer, 200, self._completion(request, text[: max(1, len(text) // 2)], "length"))
        raise ValueError(f"unknown fault {kind}")

    def _completion(self, request: dict, text: str, finish_reason: str) -> dict:
        prompt_chars = sum(len(m.get("content", "")) for m in request.get("messages", []))
        return {
            "id": f"chatcmpl-{self.count}", "object": "chat.completion", "created": int(time.time()),
            "model": request.get("model", self.model),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": prompt_chars // 4 + 1, "completion_tokens": len(text) // 4 + 1,
                      "total_tokens": prompt_chars // 4 + len(text) // 4 + 2},
        }

    async def _send(self, writer: asyncio.StreamWriter, status: int, payload: dict,
                    headers: dict[str, str] | None = None) -> bool:
        return await self._send_raw(writer, status, json.dumps(payload).encode(), headers or {})

    async def _send_raw(self, writer: asyncio.StreamWriter, status: int, body: bytes,
                        headers: dict[str, str]) -> bool:
        head = [f"HTTP/1.1 {status} X", "content-type: application/json",
                f"content-length: {len(body)}", "connection: keep-alive"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
        return True

    async def _trickle(self, writer: asyncio.StreamWriter, payload: dict, gap: float) -> bool:
        body = json.dumps(payload).encode()
        writer.write(f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
                     .encode())
        for i in range(len(body)):
            writer.write(body[i:i + 1])
            await writer.drain()
            await asyncio.sleep(gap)
        return True

    async def _reset(self, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"id\":")
        await writer.drain()
        transport = writer.transport
        transport.abort()  # RST, mid-body
        return False


def _serve_forever() -> None:
    """``python tests/openai_server.py [--latency S] [--mode generate --seeds FILE]``: serve in its own
    process; prints the URL. With ``--until-eof`` it stops when its stdin closes and prints
    ``{"requests": N}`` (the chat requests it received) first."""
    import argparse
    import sys
    from pathlib import Path

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--reply", default="OK", help="echo mode: the text of every reply")
    parser.add_argument("--mode", choices=["echo", "generate"], default="echo",
                        help="generate: the scripted model of tests/integration/generate_replies.py")
    parser.add_argument("--seeds", help="generate mode: the seed file the run uses")
    parser.add_argument("--lang", default="en", help="generate mode: the run's language")
    parser.add_argument("--until-eof", action="store_true", help="stop when stdin closes")
    args = parser.parse_args()
    reply: ReplyFn = lambda body, n: args.reply  # noqa: E731
    if args.mode == "generate":
        sys.path.insert(0, str(Path(__file__).resolve().parent / "integration"))
        sys.modules.setdefault("openai_server", sys.modules[__name__])  # one Reply class, not two
        from generate_replies import make_reply

        with open(args.seeds, encoding="utf-8") as fh:
            seeds = [json.loads(line)["instruction"] for line in fh if line.strip()]
        reply = make_reply(seeds, args.lang)
    server = OpenAIServer(reply=reply, latency=args.latency).start()
    print(server.url, flush=True)
    try:
        if args.until_eof:
            sys.stdin.read()
        else:
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    print(json.dumps({"requests": server.count}), flush=True)
    server.stop()


if __name__ == "__main__":
    _serve_forever()
