"""A total deadline for every provider call (connect, first byte and the whole body), and the stop that cuts it short.

The SDKs' `timeout` bounds each socket operation, not the call: a reply that trickles in one chunk a second never
times out. Here the SDKs' httpx client runs on a network backend whose every connect, write and read is bounded by
what is left of the calling thread's `CallClock`, read in short polls so that a stop (a worker's SIGTERM) shortens
calls already waiting on a socket. The call then ends as the SDK's own timeout error; the engine tells a call
abandoned by the stop from one that ran out of time by asking the clock.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore2
import httpx2
from httpx2._utils import get_environment_proxies  # httpx's own reading of the proxy variables

POLL_SECONDS = 0.2  # how often a waiting read looks at the clock (how late a stop can be noticed)

_local = threading.local()
# Set once by `stop_calls`: no call may run past this (time.monotonic()); read without a lock (one float).
_stop_at: float | None = None
stopping = threading.Event()  # the process is stopping: no call starts, no retry


class CallClock:
    """When one call must end: its own deadline, or earlier if the process is stopping."""

    def __init__(self, seconds: float) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + seconds

    def ends_at(self) -> float:
        stop = _stop_at
        return self.deadline if stop is None else min(self.deadline, stop)

    def left(self) -> float:
        return self.ends_at() - time.monotonic()

    @property
    def abandoned(self) -> bool:
        """Cut short by the stop rather than by its own deadline."""
        stop = _stop_at
        return stop is not None and stop < self.deadline and time.monotonic() >= stop


@contextlib.contextmanager
def call_clock(seconds: float) -> Iterator[CallClock]:
    """Bound every network operation this thread makes inside the block by one total deadline."""
    clock = CallClock(seconds)
    previous = getattr(_local, "clock", None)
    _local.clock = clock
    try:
        yield clock
    finally:
        _local.clock = previous


def stop_calls(*, after: float) -> None:
    """The process is stopping: no new call, no retry, and calls in flight end within `after` seconds."""
    global _stop_at
    _stop_at = time.monotonic() + after
    stopping.set()


def _bounded(timeout: float | None, kind: type[Exception]) -> float | None:
    """`timeout` cut to what is left of the current call; raises `kind` when nothing is."""
    clock: CallClock | None = getattr(_local, "clock", None)
    if clock is None:
        return timeout
    left = clock.left()
    if left <= 0:
        raise kind("the call's total deadline has passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore2.NetworkStream):
    def __init__(self, inner: httpcore2.NetworkStream) -> None:
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        # Short polls, so that a deadline moved earlier (a stop) is seen while the socket waits. A poll that times
        # out consumed nothing, so the next one carries on where it left off.
        waited_until = None if timeout is None else time.monotonic() + timeout
        while True:
            poll = _bounded(timeout, httpcore2.ReadTimeout)
            poll = POLL_SECONDS if poll is None else min(poll, POLL_SECONDS)
            try:
                return self.inner.read(max_bytes, poll)
            except httpcore2.ReadTimeout:
                if waited_until is not None and time.monotonic() >= waited_until:
                    raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _bounded(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> Any:
        return _Stream(self.inner.start_tls(ssl_context, server_hostname, _bounded(timeout, httpcore2.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _Backend(httpcore2.NetworkBackend):
    def __init__(self) -> None:
        self.inner = httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        bounded = _bounded(timeout, httpcore2.ConnectTimeout)
        return _Stream(self.inner.connect_tcp(host, port, bounded, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.NetworkStream:
        bounded = _bounded(timeout, httpcore2.ConnectTimeout)
        return _Stream(self.inner.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class DeadlineTransport(httpx2.HTTPTransport):
    """httpx2's own transport (its pool, TLS, limits, proxy), on the deadline-bounded network backend."""

    def __init__(self, proxy: httpx2.Proxy | None = None) -> None:
        super().__init__(
            verify=_ssl_context(),
            proxy=proxy,
            limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=100),
        )
        # httpx2 builds the right pool (direct, HTTP proxy or SOCKS proxy) but takes no network backend; each of
        # them opens its connections through `_network_backend`, so the deadline bounds a proxied call as well.
        self._pool._network_backend = _Backend()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's own default context, made once per process: loading the CA bundle takes about 100 ms of CPU, and every
    work item builds its judge's client anew (an evaluation's start, classify and finalize paid it three times, on
    the path between the API's answer and the first provider call). A context is safe to share between clients."""
    return httpx2.create_ssl_context()


def http_client(timeout: float) -> httpx2.Client:
    """The client a provider's SDK sends its requests through.

    httpx reads HTTP(S)_PROXY / ALL_PROXY / NO_PROXY only when no transport is given, so the same environment is
    turned into mounts here: a company behind an egress proxy reaches its provider as with the SDK's own client.
    """
    mounts: dict[str, httpx2.BaseTransport | None] = {
        pattern: None if url is None else DeadlineTransport(httpx2.Proxy(url))
        for pattern, url in get_environment_proxies().items()
    }
    return httpx2.Client(transport=DeadlineTransport(), mounts=mounts, timeout=timeout, follow_redirects=True)
