"""A real redis-server for tests: started on a free 127.0.0.1 port in its own directory.

Redis tests never talk to a mock, nor to a server the machine happens to run: each test
session starts its own ``redis-server`` process (see the ``redis_server`` fixture in
``tests/conftest.py``), and the chaos tests restart or kill it through this class.

Without a ``redis-server`` binary the Redis tests are skipped on a developer's machine,
but fail in CI (:func:`require_redis_binary`): a CI job that lost its server must not
pass by running none of them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

REDIS_BINARY = "redis-server"
"""The server binary looked up on PATH; ``make test`` installs it through apt when missing."""

START_TIMEOUT = 10.0
"""Seconds a server may take to accept connections before the fixture fails."""


CI_VARIABLE = "CI"
"""Set to ``true`` by CI services (GitHub Actions, GitLab CI and others) in every job."""

MISSING = f"no {REDIS_BINARY} binary on PATH (make test installs it through apt)"


def redis_binary(path: str | None = None) -> str | None:
    """The path of ``redis-server`` on ``path`` (PATH by default), or ``None``."""
    return shutil.which(REDIS_BINARY, path=path)


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the tests run in CI: :data:`CI_VARIABLE` set to anything but empty,
    ``0``, ``false``, ``no`` or ``off``."""
    value = (os.environ if environ is None else environ).get(CI_VARIABLE, "")
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def require_redis_binary(environ: Mapping[str, str] | None = None) -> str:
    """The ``redis-server`` a Redis test needs, found on the PATH of ``environ``
    (``os.environ`` by default).

    Without one, the test is skipped, with the reason; in CI (:func:`in_ci`) it fails
    instead, since a CI run has a server installed (``make test`` installs it).
    """
    environ = os.environ if environ is None else environ
    binary = redis_binary(environ.get("PATH", os.defpath))
    if binary is not None:
        return binary
    if in_ci(environ):
        pytest.fail(f"{MISSING}; {CI_VARIABLE}={environ[CI_VARIABLE]} says this is a CI "
                    "run, where the Redis tests must run, not be skipped", pytrace=False)
    pytest.skip(MISSING)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process bound to 127.0.0.1 with its data in ``directory``.

    Parameters:
        directory: where the server keeps its log and, with ``persistence``, its
            append-only file; created if missing.
        persistence: keep an append-only file fsynced every write, so a restart
            finds every acknowledged write (the chaos tests need this); off, the
            server keeps nothing on disk.
        port: the port to bind; a free one by default. It stays the same across
            :meth:`restart`, so clients reconnect to the same URL.
    """

    def __init__(self, directory: Path, *, persistence: bool = False, port: int | None = None):
        binary = redis_binary()
        if binary is None:
            raise RuntimeError(f"no {REDIS_BINARY} binary on PATH")
        self.binary = binary
        self.directory = directory
        self.persistence = persistence
        self.port = port if port is not None else free_port()
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def url_for(self, db: int) -> str:
        """The URL of logical database ``db`` on this server."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _arguments(self) -> list[str]:
        args = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--logfile", "redis.log",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--save", "",
            "--databases", "64",
        ]
        if self.persistence:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        return args

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        if self.process is not None and self.process.poll() is None:
            return
        self.process = subprocess.Popen(
            self._arguments(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.directory / "redis.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {tail}")
            if self.ping():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} in {START_TIMEOUT}s")

    def ping(self) -> bool:
        """Whether the server answers PING right now (a raw RESP exchange, no client)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGTERM (it writes its files and exits) or, with ``kill``, SIGKILL."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self, *, kill: bool = False) -> None:
        """Stop and start again on the same port and directory."""
        self.stop(kill=kill)
        self.start()

    def flushall(self) -> None:
        """Drop every key in every database (between tests sharing the server)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            reply = sock.recv(64)
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"FLUSHALL answered {reply!r}")
