"""Request limits in front of every route: body and query-string size caps, and a rate limit on
the expensive endpoints (matching, related work from a text or PDF, uploads, writes).

A plain ASGI middleware, so it answers before a body is parsed or a model is run:

- a body over ``max_request_bytes`` is a 413 (declared by Content-Length, or counted while a
  chunked body is read);
- a query string over ``max_query_string_bytes`` is a 422 that says so;
- an expensive request beyond the caller's token bucket (``rate_limit_burst`` at once, refilled at
  ``rate_limit_per_minute``) is a 429 with ``Retry-After`` in whole seconds. The caller is its API
  key (by the key's name) when the key is a configured one, else its client address. The buckets
  live in ``ratelimit.sqlite`` in the index folder, shared by every worker process of the server.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from scimatch.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# POST routes that run the model over caller-supplied text, or write; any multipart upload counts too.
EXPENSIVE_PATHS = ("/similar", "/grants/related", "/documents")
EXPENSIVE_PREFIXES = ("/match/",)
MAX_BUCKETS = 10_000


def is_expensive(method: str, path: str, content_type: str) -> bool:
    if method != "POST":
        return False
    return (path.rstrip("/") in EXPENSIVE_PATHS or path.startswith(EXPENSIVE_PREFIXES)
            or content_type.startswith("multipart/"))


class TokenBuckets:
    """One token bucket per caller: ``burst`` tokens, refilled at ``per_minute`` a minute.

    In memory, for one process. ``SharedTokenBuckets`` keeps the same buckets in a file, for an API
    served by several worker processes."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(max(1, burst))
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, caller: str) -> float:
        """0 when the request may go ahead (a token is spent), else the seconds until one is free."""
        now = self.clock()
        with self._lock:
            tokens, wait = self._spend(self._buckets.get(caller), now)
            self._buckets[caller] = (tokens, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._forget_full(now)
            return wait

    def _spend(self, state: tuple[float, float] | None, now: float) -> tuple[float, float]:
        """(tokens left, seconds to wait) after one request, from the bucket's last (tokens, at)."""
        tokens, at = state if state is not None else (self.burst, now)
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        if tokens >= 1.0:
            return tokens - 1.0, 0.0
        return tokens, (1.0 - tokens) / self.rate if self.rate > 0 else math.inf

    def _forget_full(self, now: float) -> None:
        """Drop callers whose bucket has refilled: they are indistinguishable from new ones."""
        for caller, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.rate >= self.burst:
                del self._buckets[caller]


class SharedTokenBuckets(TokenBuckets):
    """The same buckets in a SQLite file, so every worker process of one server spends from one bucket
    per caller (each process counting alone would let a caller through once per worker).
    Wall-clock time, as the file may outlive a reboot."""

    def __init__(self, path: Path, per_minute: int, burst: int, clock: Callable[[], float] = time.time) -> None:
        super().__init__(per_minute, burst, clock)
        self.path = path
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")  # losing the last second of buckets to a crash is harmless
            conn.execute("CREATE TABLE IF NOT EXISTS buckets (caller TEXT PRIMARY KEY, tokens REAL, at REAL)")
            self._local.conn = conn
        return conn

    def take(self, caller: str) -> float:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = self.clock()
            row = conn.execute("SELECT tokens, at FROM buckets WHERE caller = ?", (caller,)).fetchone()
            tokens, wait = self._spend(row, now)
            conn.execute("INSERT INTO buckets VALUES (?, ?, ?) ON CONFLICT(caller) DO UPDATE SET tokens = ?, at = ?",
                         (caller, tokens, now, tokens, now))
            if row is None and conn.execute("SELECT COUNT(*) FROM buckets").fetchone()[0] > MAX_BUCKETS:
                conn.execute("DELETE FROM buckets WHERE tokens + (? - at) * ? >= ?", (now, self.rate, self.burst))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return wait


class Callers:
    """Who a request counts against: a configured API key by its name, anyone else by client address
    (so sending made-up keys does not buy fresh buckets)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._keyring: tuple[int, object] | None = None

    def keyring(self):
        from scimatch.api.auth import KeyRing

        path = self.settings.key_file()
        stamp = path.stat().st_mtime_ns if path.exists() else 0
        if self._keyring is None or self._keyring[0] != stamp:  # re-read when keys are added while serving
            self._keyring = (stamp, KeyRing.load(path, self.settings.api_keys, self.settings.admin_key))
        return self._keyring[1]

    def __call__(self, scope: Scope) -> str:
        key = _header(scope, b"x-api-key")
        if key:
            try:
                principal = self.keyring().identify(key)
            except Exception:  # a broken key file is the auth dependency's to report; count by address
                principal = None
            if principal is not None:
                return f"key:{principal.name}"
        client = scope.get("client")
        return f"ip:{client[0] if client else 'unknown'}"


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return value.decode("latin-1")
    return None


async def _reply(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """ASGI middleware: ``app.add_middleware(RequestLimits, settings=settings)``."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_request_bytes
        self.max_query = settings.max_query_string_bytes
        self.buckets = (SharedTokenBuckets(settings.home / "ratelimit.sqlite", settings.rate_limit_per_minute,
                                           settings.rate_limit_burst)
                        if settings.rate_limit_per_minute > 0 else None)
        self.caller_of = Callers(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if len(query) > self.max_query:
            await _reply(send, 422, f"query string of {len(query)} bytes is longer than the limit of "
                                    f"{self.max_query} bytes")
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) > self.max_body):
            await _reply(send, 413, f"request body larger than the limit of {self.max_body} bytes")
            return
        method, path = scope.get("method", "GET"), scope.get("path", "")
        if self.buckets is not None and is_expensive(method, path, _header(scope, b"content-type") or ""):
            wait = self.buckets.take(self.caller_of(scope))
            if wait > 0:
                retry = max(1, math.ceil(wait)) if math.isfinite(wait) else 3600
                await _reply(send, 429, f"too many requests to {path}: retry after {retry} s",
                             {"Retry-After": str(retry)})
                return
        if declared is None and method in ("POST", "PUT", "PATCH"):
            receive = await self._buffered(receive, send)
            if receive is None:
                return
        await self.app(scope, receive, send)

    async def _buffered(self, receive: Receive, send: Send) -> Receive | None:
        """Read a body of unknown length up to the limit (413 past it) and replay it to the app."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                chunks.clear()
                pending = [message]
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _reply(send, 413, f"request body larger than the limit of {self.max_body} bytes")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
                break

        async def replay() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        return replay
