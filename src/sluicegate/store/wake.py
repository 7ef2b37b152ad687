"""Waking a semaphore's waiter in another process, for stores without notifications.

SQLite has no way to tell another process that something changed. A store that has a
waiter listens on one Unix datagram socket of its own (:class:`DatagramWake`) and stores
that socket's *address* with each of its waiters; whoever frees a slot sends each waiter
it wakes a datagram holding the waiter's task token (:func:`send_wake`). The kernel
delivers it to the listener's event loop at once (tens of microseconds), and it tells
the sender when nobody listens any more (the process died: ``ECONNREFUSED``, or the
socket file is gone), so a dead waiter is dropped and the next one woken.

Addresses: on Linux, a name in the abstract namespace (written ``@sluicegate-...``),
which vanishes with its process and needs no file; elsewhere, a socket file in the
temporary directory, removed by :meth:`DatagramWake.close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
from collections.abc import Callable

__all__ = ["DatagramWake", "send_wake"]

_ABSTRACT = sys.platform.startswith("linux")


def _sockaddr(address: str) -> str:
    return "\0" + address[1:] if address.startswith("@") else address


class DatagramWake:
    """One listening datagram socket on the running event loop; every datagram received
    is a task token handed to ``on_wake``."""

    def __init__(self, on_wake: Callable[[str], None]) -> None:
        self.on_wake = on_wake
        self.address = ""
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> str:
        """Bind and listen (once); the address to store with waiters."""
        if self._sock is not None:
            return self.address
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"sluicegate-{os.getpid()}-{os.urandom(6).hex()}"
        if _ABSTRACT:
            self.address = "@" + name
        else:
            self.address = os.path.join(tempfile.gettempdir(), name + ".sock")
        sock.bind(_sockaddr(self.address))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        loop.add_reader(sock.fileno(), self._readable)
        self._sock, self._loop = sock, loop
        return self.address

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        while True:
            try:
                data = sock.recv(256)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.on_wake(data.decode("ascii", "replace"))

    def close(self) -> None:
        sock, loop = self._sock, self._loop
        self._sock = self._loop = None
        if sock is None:
            return
        if loop is not None and not loop.is_closed():
            loop.remove_reader(sock.fileno())
        sock.close()
        if not self.address.startswith("@"):
            with contextlib.suppress(OSError):
                os.unlink(self.address)


_sender: socket.socket | None = None


def send_wake(address: str, token: str) -> bool:
    """Send ``token`` to the listener at ``address``; ``False`` when nobody listens there
    (its process is gone). A full receive buffer counts as delivered: the listener is
    alive, and its waiter's expiry-time attempt covers a lost wake."""
    global _sender
    if not address:
        return False
    if _sender is None:
        _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        _sender.setblocking(False)
    try:
        _sender.sendto(token.encode("ascii"), _sockaddr(address))
    except (BlockingIOError, InterruptedError):
        return True
    except (ConnectionRefusedError, FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return False
    return True
