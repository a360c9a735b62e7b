"""Open a TCP connection from inside another process's network namespace (a pod's), as port-forward needs.

``setns(2)`` moves only the calling thread, so a fresh thread (never a pooled one) enters the pod's
namespace, connects, and ends; the socket keeps the namespace it was created in, and asyncio then
drives it from the loop. Needs CAP_SYS_ADMIN (the kubelet runs as root).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import socket
import threading

from edgek8s.model import errors

CLONE_NEWNET = 0x40000000


def _connect_in_namespace(pid: int, port: int, timeout: float) -> socket.socket:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into the network namespace of pid {pid} failed")
    finally:
        os.close(target)
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(None)
    sock.setblocking(False)
    return sock


def _settle(done: asyncio.Future[socket.socket], sock: socket.socket | None, error: OSError | None) -> None:
    if done.done():  # the waiter was cancelled: don't leak the socket
        if sock is not None:
            sock.close()
    elif error is not None:
        done.set_exception(error)
    elif sock is not None:
        done.set_result(sock)


async def open_connection_in(pid: int, port: int, *, timeout: float = 5.0) -> tuple[
        asyncio.StreamReader, asyncio.StreamWriter]:
    """A stream to 127.0.0.1:port as seen from the network namespace of ``pid``."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[socket.socket] = loop.create_future()

    def run() -> None:
        # Runs on a throw-away thread: its namespace dies with it, nothing else is ever moved.
        try:
            sock = _connect_in_namespace(pid, port, timeout)
        except OSError as exc:
            loop.call_soon_threadsafe(_settle, done, None, exc)
            return
        loop.call_soon_threadsafe(_settle, done, sock, None)

    threading.Thread(target=run, name=f"netns-connect-{pid}", daemon=True).start()
    try:
        sock = await done
    except OSError as exc:
        raise errors.BadRequest(
            f"error forwarding port {port} to pod: {exc.strerror or exc}"
        ) from exc
    return await asyncio.open_connection(sock=sock)
