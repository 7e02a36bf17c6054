"""httpx transport tuning: larger socket reads for multi-hundred-MB export files.

httpcore reads at most 64 KiB per `recv`; for a 500 MB file that is ~8000 trips through
httpcore/h11 in Python. Wrapping the network backend so each read asks for up to 1 MiB cuts that
overhead without changing anything else (TLS streams still return one record per read).
"""

from __future__ import annotations

import logging
import socket
import typing

import httpcore
import httpx

from .errors import HostNotFoundError, MarketoError, TransientError

__all__ = ["READ_SIZE", "default_transport", "transport_failure"]

log = logging.getLogger("marketo_assets.marketo")
READ_SIZE = 1 << 20


class _LargeReadStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max(max_bytes, READ_SIZE), timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):  # type: ignore[no-untyped-def]
        return _LargeReadStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _LargeReadBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend):
        self._inner = inner

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[no-untyped-def]
        return _LargeReadStream(
            self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        )

    def connect_unix_socket(self, path, timeout=None, socket_options=None):  # type: ignore[no-untyped-def]
        return _LargeReadStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _dns_error(exc: BaseException) -> socket.gaierror | None:
    """The socket.gaierror behind an httpx error (httpx.ConnectError <- httpcore.ConnectError
    <- gaierror), if a DNS lookup is what failed."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None or isinstance(seen, socket.gaierror):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def transport_failure(exc: httpx.TransportError, host: str, what: str) -> MarketoError:
    """The error to raise for a request to `host` that failed below HTTP: HostNotFoundError
    (not retried) when the name does not resolve, else a TransientError (retried within the
    budget): refused connections, resets, timeouts and temporary DNS failures (EAI_AGAIN)."""
    dns = _dns_error(exc)
    if dns is not None and dns.errno != socket.EAI_AGAIN:
        return HostNotFoundError(host)
    if dns is not None:
        return TransientError(f"{what}: DNS lookup of {host!r} failed for now (will retry)")
    return TransientError(f"{what}: {type(exc).__name__} (connection problem)")


def default_transport() -> httpx.HTTPTransport:
    """httpx's default transport with 1 MiB socket reads (falls back to stock if httpcore's
    internals differ from what this expects)."""
    transport = httpx.HTTPTransport()
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(pool, httpcore.ConnectionPool) and isinstance(backend, httpcore.SyncBackend):
        pool._network_backend = _LargeReadBackend(backend)
    else:  # pragma: no cover - depends on the httpx/httpcore versions installed
        log.debug("marketo: stock httpx transport (large reads not enabled)")
    return transport
