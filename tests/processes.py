"""Helpers for tests that start real server and worker processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.db import connection

from chattonic.core.webserver import uvicorn_command

ROOT = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``condition`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def http_json(url: str) -> dict:
    """A page's JSON body, whatever its status ({} when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())
    except OSError:
        return {}


def test_database_env() -> dict[str, str]:
    """Environment that points a child process at this test run's database and Redis."""
    env = dict(os.environ)
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        env["DATABASE_URL"] = (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
    env["DEBUG"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Process:
    """A child process whose output goes to a log file, stopped at exit of the block."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.args = args
        self.env = env
        self.log = log
        self.popen: subprocess.Popen | None = None

    def __enter__(self) -> Process:
        self.start()
        return self

    def start(self) -> None:
        self._log_file = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def stop(self, sig: int = 15, timeout: float = 20) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log_file.close()
        return self.popen.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __exit__(self, *exc) -> None:
        self.stop()


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def uvicorn(port: int) -> list[str]:
    return uvicorn_command(port, extra=("--lifespan", "off"))


def celery_worker(name: str = "test", *, concurrency: int = 1) -> list[str]:
    """``celery worker`` as deployed (prefork, the settings' broker options)."""
    return python(
        "-m",
        "celery",
        "-A",
        "chattonic",
        "worker",
        "-l",
        "INFO",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "-n",
        f"{name}@%h",
        "--without-mingle",
        "--without-gossip",
    )


def printed_ratio_holds(ratio: str, top: str, bottom: str, *, scale: float = 1.0) -> bool:
    """Whether a bench's printed ``ratio`` agrees with ``scale * top / bottom``, all three as
    printed: each stands for any value its last printed digit rounds to, so a 7 ms page printed
    as 7.6 beside 7.2 may have a printed ratio of 1.07 or 1.04 (the times were 7.55 and 7.24)."""

    def bounds(text: str) -> tuple[float, float]:
        half = 0.5 * 10 ** -(len(text.split(".")[1]) if "." in text else 0)
        return float(text) - half, float(text) + half

    (r_low, r_high), (t_low, t_high), (b_low, b_high) = bounds(ratio), bounds(top), bounds(bottom)
    if b_low <= 0:
        return True  # a bottom that rounds to 0 bounds nothing
    return r_low <= scale * t_high / b_low and scale * t_low / b_high <= r_high
