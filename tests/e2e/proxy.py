"""A TCP proxy between the browser and the web process that a test can cut, as a network does.

``cut()`` resets every connection under way (RST: the browser sees the socket die, without a
WebSocket close frame) and resets each new one as soon as it arrives; ``hold()`` resets those
under way and then accepts new connections without ever answering them (a network that drops
packets: the browser's attempt hangs); ``restore()`` forwards new connections again. It runs
its own asyncio loop in a thread, so that the test's (synchronous) Playwright calls go on.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

FORWARD, CUT, HOLD = "forward", "cut", "hold"


class CuttableProxy:
    def __init__(self, target_port: int):
        self.target_port = target_port
        self.mode = FORWARD
        self.accepted = {FORWARD: 0, CUT: 0, HOLD: 0}  # connections accepted in each mode
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CuttableProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def cut(self) -> None:
        self._call(self._switch(CUT))

    def hold(self) -> None:
        self._call(self._switch(HOLD))

    def restore(self) -> None:
        self._call(self._switch(FORWARD))

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _switch(self, mode: str) -> None:
        self.mode = mode
        if mode != FORWARD:
            for writer in list(self._writers):
                _reset(writer)
            self._writers.clear()

    async def _stop(self) -> None:
        self._server.close()
        await self._switch(CUT)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self.mode
        self.accepted[mode] += 1
        if mode == CUT:
            _reset(writer)
            return
        self._writers.add(writer)
        if mode == HOLD:
            return  # never answered; reset by the next cut, hold or the proxy's end
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            _reset(writer)
            return
        self._writers.add(up_writer)
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
    except (ConnectionError, OSError):
        _reset(writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a dead path or a restarted middlebox does."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.fileno() != -1:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
