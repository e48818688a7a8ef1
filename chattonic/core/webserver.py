"""How a web process is started: `make run` (runplatform), the tests' and the benches' servers
alike, so that what is tested and measured is what is deployed."""

from __future__ import annotations

import sys


def uvicorn_command(
    port: int,
    *,
    app: str = "chattonic.asgi:application",
    host: str = "127.0.0.1",
    extra: tuple[str, ...] = (),
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        host,
        "--port",
        str(port),
        "--no-access-log",
        # Chat frames are small: compressing each one (permessage-deflate) cost more CPU than
        # the rest of a web chat message's socket work (bench/webchat.py).
        "--ws-per-message-deflate",
        "false",
        *extra,
    ]
