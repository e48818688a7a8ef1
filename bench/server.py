"""One uvicorn server process for the benches that measure over the network."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_server(
    app: str, port: int, log_path: Path, *, env: dict[str, str], extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, object]:
    """Start ``uvicorn app`` on 127.0.0.1:port (its output in log_path) and wait until it
    listens. BENCH_PROFILE=<file> runs the server under cProfile, for hunting costs."""
    env = {**env, "PYTHONUNBUFFERED": "1"}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the server
    profile = ["-m", "cProfile", "-o", env["BENCH_PROFILE"]] if "BENCH_PROFILE" in env else []
    server = subprocess.Popen(
        [
            sys.executable,
            *profile,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--no-access-log",
            "--log-level",
            "warning",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise SystemExit(f"the server exited; see {log_path}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server, log
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise SystemExit(f"the server did not listen; see {log_path}") from None
            time.sleep(0.1)


def stop_server(server: subprocess.Popen, log, timeout: float = 120) -> None:
    """Stop it as Ctrl-C would (a profile is written then), killing it if it hangs."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    log.close()
