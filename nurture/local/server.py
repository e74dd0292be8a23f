"""Run the local provider apps on loopback, in a thread (tests) or in a loop (``nurture dev``).

We bind the listening socket ourselves before handing it to uvicorn. That gives a
clear :class:`PortInUseError` in the caller instead of a log line and ``SystemExit``
from inside uvicorn, and with ``port=0`` the kernel's free-port choice is known
before the server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

__all__ = ["LocalServer", "PortInUseError", "RunningServer", "serve", "start_in_thread"]


class PortInUseError(OSError):
    """The requested port is already taken by another program."""

    def __init__(self, host: str, port: int, setting: str | None = None) -> None:
        fix = f"set {setting} to a free port" if setting else "choose another port"
        super().__init__(
            errno.EADDRINUSE,
            f"port {port} on {host} is already in use; {fix} or stop the other program",
        )
        self.host = host
        self.port = port

    def __str__(self) -> str:
        return str(self.strerror)


def bind_socket(host: str, port: int, setting: str | None = None) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (0 = any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto says TCP, and without it Nagle + delayed ACKs add ~40 ms to every response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    # SO_REUSEADDR lets a restarted dev server reuse a port in TIME_WAIT; on Linux
    # it still refuses a port another socket is listening on.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(host, port, setting) from exc
        raise
    return sock


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handling: the owner (a test, ``nurture dev``) decides
    when to stop, and several of these can share one event loop."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        # uvicorn's loop polls should_exit every 0.1 s; waiting on an event as well
        # lets request_stop() end it at once, which keeps test teardowns short.
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    def request_stop(self) -> None:
        """Thread-safe: ask the server to shut down."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(wake.set)


class LocalServer:
    """One app on one loopback socket.

    The socket is bound in the constructor, so a busy port fails right there with
    :class:`PortInUseError` and :attr:`port`/:attr:`url` are valid immediately.
    ``setting`` names the config knob that chooses this port, for the error message.
    """

    def __init__(
        self,
        app: FastAPI,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        setting: str | None = None,
        log_level: str = "warning",
    ) -> None:
        self.app = app
        self.host = host
        self._socket = bind_socket(host, port, setting)
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            host=host,
            port=self.port,
            log_level=log_level,
            access_log=False,
            lifespan="auto",
            # Keep shutdowns quick: a lingering keep-alive connection (httplib2 keeps
            # them) must not hold up a test teardown.
            timeout_graceful_shutdown=2,
        )
        self._server = _EmbeddedServer(config)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def started(self) -> bool:
        return self._server.started

    def request_stop(self) -> None:
        """Ask the server to finish (from any thread); :meth:`serve` returns shortly after."""
        self._server.request_stop()

    async def serve(self) -> None:
        """Serve until :meth:`request_stop` is called or the task is cancelled."""
        try:
            await self._server.serve(sockets=[self._socket])
        except asyncio.CancelledError:
            # Cancelled mid-loop: uvicorn skipped its shutdown, so close listeners
            # and connections here to really free the port.
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.shield(self._server.shutdown(sockets=[self._socket]))
            raise
        finally:
            self._socket.close()

    def start_in_thread(self, startup_timeout: float = 10.0) -> RunningServer:
        """Serve from a daemon thread; returns once requests are being accepted."""
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)

        thread = threading.Thread(target=run, name=f"local-server-{self.port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + startup_timeout
        while not self._server.started:
            if failure or not thread.is_alive():
                raise RuntimeError(f"local server on {self.url} failed to start") from (
                    failure[0] if failure else None
                )
            if time.monotonic() > deadline:
                self.request_stop()
                raise TimeoutError(
                    f"local server on {self.url} did not start in {startup_timeout}s"
                )
            time.sleep(0.005)
        return RunningServer(self, thread)


class RunningServer:
    """Handle to a server running in a background thread."""

    def __init__(self, server: LocalServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int:
        return self._server.port

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        self._server.request_stop()
        self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_in_thread(
    app: FastAPI, host: str = "127.0.0.1", port: int = 0, *, setting: str | None = None
) -> RunningServer:
    """Serve ``app`` on ``host:port`` from a daemon thread (port 0 = a free port).

    Raises :class:`PortInUseError` if the port is taken.
    """
    return LocalServer(app, host, port, setting=setting).start_in_thread()


async def serve(
    app: FastAPI, host: str = "127.0.0.1", port: int = 0, *, setting: str | None = None
) -> None:
    """Serve ``app`` inside the running event loop until cancelled.

    Meant for ``nurture dev``, which gathers several of these in one loop. A busy
    port raises :class:`PortInUseError` before anything is served. To learn the port
    chosen for ``port=0``, use :class:`LocalServer` directly (it binds on creation).
    """
    await LocalServer(app, host, port, setting=setting).serve()
