"""``make run``'s launcher on the embedded defaults: the dashboard and /readyz answer, and
Ctrl-C stops web, worker, beat and the embedded Redis."""

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import websockets

from chattonic.core import embedded
from chattonic.demo import DEMO_BOT_NAME
from tests.processes import ROOT, Process, free_port, http_status, python, wait_for
from tests.sockets import said

pytestmark = [pytest.mark.processes, pytest.mark.embedded_only]


def test_runplatform_serves_the_dashboard_and_is_ready(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DEBUG="1", CHATTONIC_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    migrate = subprocess.run(
        python("manage.py", "migrate", "--noinput"), cwd=ROOT, env=env, capture_output=True
    )
    assert migrate.returncode == 0, migrate.stderr
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env["PORT"] = str(port)  # README.md: PORT, as `PORT=8765 make run`
    platform = Process(python("manage.py", "runplatform"), env, tmp_path / "run.log")
    with platform:
        wait_for(lambda: "Chat-Tonic is running" in platform.output(), 60, what="the banner")
        assert http_status(f"{base}/readyz") == 200
        assert http_status(f"{base}/dashboard/login/") == 200
        banner = platform.output()
        assert f"http://localhost:{port}/dashboard/" in banner
        assert "owner@demo.example" in banner and "agent@demo.example" in banner
        assert f"http://localhost:{port}/console/" in banner
        # The header's other region is another deployment, which this run does not start.
        assert "This is US Central. Not started here (docs/regions.md runs both):" in banner
        assert "EU Frankfurt       http://localhost:8001/dashboard/" in banner
        demo_page = next(
            line.split()[-1] for line in banner.splitlines() if "Widget demo page" in line
        )
        assert demo_page.startswith(f"http://localhost:{port}/demo/")
        assert http_status(demo_page.replace("localhost", "127.0.0.1")) == 200
        assert http_status(f"{base}/static/chattonic/widget.js") == 200  # the demo's widget
        # The demo bot's live version calls this port, and was published before the web
        # process started (its warm-up loaded it), not after it was ready.
        web = next(pid for pid in _children_of(platform.popen.pid) if "uvicorn" in _command(pid))
        published, definition = _demo_live_version(tmp_path / "chattonic.sqlite3")
        assert f"localhost:{port}" in definition
        assert published < _started_at(web) + timedelta(seconds=1 / os.sysconf("SC_CLK_TCK"))
        # A visitor on the demo page tracks an order: the lookup (the worker's HTTP node)
        # reaches this port, whatever it is (it was refused on any port but 8000).
        key = demo_page.rstrip("/").rsplit("/", 1)[1]
        answer = asyncio.run(_track_an_order(port, key))
        assert answer.startswith("Order 1001 is"), answer
        _assert_quiet(platform)
        assert platform.stop(signal.SIGINT) == 0
    assert "worker | " in platform.output() and "beat   | " in platform.output()
    assert http_status(f"{base}/healthz") is None
    assert not embedded.ping(tmp_path / "redis.sock")


def _assert_quiet(platform: Process) -> None:
    """What the launcher prints is readable: no Celery banner, no /readyz poll of the start,
    and no line about the runs of the housekeeping that beat starts every few seconds (it
    printed three lines a second), while the worker's lines about other tasks still show.
    Checked once beat has run for 3 s (sends_due_queue is due every second)."""
    started = wait_for(
        lambda: _logged_at(platform.output(), "beat: Starting"), 30, what="beat's start"
    )
    wait_for(lambda: datetime.now() >= started + timedelta(seconds=3), 10, what="3 s of beat")
    output = platform.output()
    assert "Task bots.tasks.bot_http_request[" in output  # the order lookup's run, relayed
    assert "sends_due_queue" not in output and "message_send_sweep" not in output
    assert "[tasks]" not in output and "[config]" not in output  # Celery's banners
    assert "readyz: " not in output  # the warm-up's polls (the banner lists /readyz)


def _logged_at(output: str, text: str) -> datetime | None:
    """When Celery logged the first line holding ``text`` (its local time, as printed:
    ``[2026-12-07 20:39:31,323: INFO/MainProcess] ...``)."""
    for line in output.splitlines():
        if text in line and "[" in line:
            stamp = line.split("[", 1)[1].split(":", 3)
            return datetime.strptime(":".join(stamp[:3]), "%Y-%m-%d %H:%M:%S,%f")
    return None


async def _track_an_order(port: int, key: str) -> str:
    """As the widget on the demo page: "Track my order", an email, an order number; the
    bot's answer after the lookup."""
    origin = f"http://localhost:{port}"
    url = f"ws://127.0.0.1:{port}/ws/webchat/{key}/"
    async with websockets.connect(url, origin=origin, open_timeout=30) as ws:

        async def bot_says(*parts: str) -> str:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
                assert frame["type"] != "error", frame
                messages = frame["messages"] if frame["type"] == "history" else said(frame)
                for message in messages:
                    if message["sender"] == "bot" and any(p in message["text"] for p in parts):
                        return message["text"]

        assert json.loads(await ws.recv())["type"] == "session"
        frames = [
            ({"type": "start"}, "What can I do for you?"),
            (
                {
                    "type": "quick_reply",
                    "client_id": "q",
                    "text": "Track my order",
                    "payload": "track_order",
                },
                "email address",
            ),
            ({"type": "message", "client_id": "e", "text": "walt@example.com"}, "order number"),
            ({"type": "message", "client_id": "n", "text": "1001"}, ("Order 1001", "can't reach")),
        ]
        answer = ""
        for frame, parts in frames:
            await ws.send(json.dumps(frame))
            answer = await bot_says(*([parts] if isinstance(parts, str) else parts))
        return answer


def _demo_live_version(database: Path) -> tuple[datetime, str]:
    """The demo bot's live version: when it was published (UTC), and its flow."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        published, definition = connection.execute(
            "SELECT v.published_at, v.definition FROM bots_bot b JOIN bots_botversion v "
            "ON v.id = b.published_version_id WHERE b.name = ?",
            [DEMO_BOT_NAME],
        ).fetchone()
    return datetime.fromisoformat(published).replace(tzinfo=UTC), definition


def _started_at(pid: int) -> datetime:
    """When a process started (from /proc: clock ticks since the boot)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    boot = next(
        int(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), UTC)


def _children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:120]
    except OSError:
        return "?"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("how", ["sigterm_then_sigkill", "sigkill"])
def test_runplatforms_children_die_with_it_whatever_signal_ends_it(tmp_path, how):
    """SIGTERM then SIGKILL 2 s later (a supervisor that gives up), or SIGKILL alone: no
    web, worker, beat or embedded Redis survives."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DEBUG="1", CHATTONIC_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    migrate = subprocess.run(
        python("manage.py", "migrate", "--noinput"), cwd=ROOT, env=env, capture_output=True
    )
    assert migrate.returncode == 0, migrate.stderr
    port = free_port()
    platform = Process(
        python("manage.py", "runplatform", "--port", str(port)), env, tmp_path / "run.log"
    )
    with platform:
        wait_for(lambda: "Chat-Tonic is running" in platform.output(), 60, what="the banner")
        wait_for(lambda: "beat   | " in platform.output(), 30, what="beat's output")
        children = _children_of(platform.popen.pid)
        commands = {Path(f"/proc/{p}/cmdline").read_text() for p in children}
        assert any("redis-server" in c for c in commands), commands
        assert any("beat" in c for c in commands) and any("worker" in c for c in commands)
        if how == "sigterm_then_sigkill":
            platform.popen.send_signal(signal.SIGTERM)
            time.sleep(2)  # the scenario itself: a supervisor's grace of 2 s, then SIGKILL
        platform.popen.kill()
        platform.popen.wait(timeout=10)
        wait_for(
            lambda: not any(_alive(p) for p in children),
            60,
            what=f"every child gone: {[(p, _command(p)) for p in children if _alive(p)]}",
        )
    assert not embedded.ping(tmp_path / "redis.sock")
    assert http_status(f"http://127.0.0.1:{port}/healthz") is None
