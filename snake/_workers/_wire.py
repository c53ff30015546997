"""Messages between the main process and a worker: length-prefixed bytes on a socket.

The worker side is plain blocking ``socket`` calls (workers import no trio);
the main side reads and writes a ``trio.SocketStream``. A message is an
8-byte little-endian length and that many bytes; a clean end of the stream
between two messages means the other side is done.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket

    import trio

HEADER = struct.Struct("<Q")
#: Below this, a message and its header go out in one write.
_JOIN_BELOW = 64 * 1024


def listen_address(name: str) -> tuple[str | bytes, str | None]:
    """Where the main process listens for its workers, and a folder to remove after.

    Linux's abstract socket namespace leaves nothing on disk; elsewhere the
    socket is a file in a private temporary folder.
    """
    if sys.platform == "linux":
        return f"\0{name}".encode(), None
    folder = tempfile.mkdtemp(prefix="snake-")
    return os.path.join(folder, "workers"), folder


def send(sock: socket.socket, data: bytes) -> None:
    """Send one message (blocking)."""
    header = HEADER.pack(len(data))
    if len(data) < _JOIN_BELOW:
        sock.sendall(header + data)
    else:
        sock.sendall(header)
        sock.sendall(data)


def receive(sock: socket.socket) -> bytes | None:
    """The next message (blocking), or ``None`` if the other side closed."""
    header = _exactly(sock, HEADER.size, at_boundary=True)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    data = _exactly(sock, size, at_boundary=False)
    assert data is not None
    return data


def _exactly(sock: socket.socket, size: int, *, at_boundary: bool) -> bytes | None:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            if got == 0 and at_boundary:
                return None
            raise EOFError("the main process closed the connection in the middle of a message")
        got += n
    return bytes(buffer)


async def send_async(stream: trio.SocketStream, data: bytes) -> None:
    """Send one message on a trio stream."""
    header = HEADER.pack(len(data))
    if len(data) < _JOIN_BELOW:
        await stream.send_all(header + data)
    else:
        await stream.send_all(header)
        await stream.send_all(data)


async def receive_exactly(stream: trio.SocketStream, size: int) -> bytes:
    """``size`` bytes from a trio stream, which must not end before."""
    data = b""
    while len(data) < size:
        chunk = await stream.receive_some(size - len(data))
        if not chunk:
            raise EOFError("the worker closed its connection before it said which lane it serves")
        data += chunk
    return data


class Reader:
    """Reads whole messages from a trio stream."""

    __slots__ = ("_buffer", "_stream")

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def receive(self) -> bytes | None:
        """The next message, or ``None`` if the worker closed its end between two."""
        if not await self._fill(HEADER.size):
            if self._buffer:
                raise EOFError("the worker closed its connection in the middle of a message")
            return None
        (size,) = HEADER.unpack_from(self._buffer)
        if not await self._fill(HEADER.size + size):
            raise EOFError("the worker closed its connection in the middle of a message")
        data = bytes(self._buffer[HEADER.size : HEADER.size + size])
        del self._buffer[: HEADER.size + size]
        return data

    async def _fill(self, size: int) -> bool:
        while len(self._buffer) < size:
            chunk = await self._stream.receive_some(max(size - len(self._buffer), 65536))
            if not chunk:
                return False
            self._buffer += chunk
        return True
