"""``make run``'s launcher on the embedded defaults: the dashboard and /readyz answer, and
Ctrl-C stops web, worker, beat and the embedded Redis."""

import os
import signal
import subprocess

import pytest

from chattonic.core import embedded
from tests.processes import ROOT, Process, free_port, http_status, python, wait_for

pytestmark = pytest.mark.processes


def test_runplatform_serves_the_dashboard_and_is_ready(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DEBUG="1", CHATTONIC_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    migrate = subprocess.run(
        python("manage.py", "migrate", "--noinput"), cwd=ROOT, env=env, capture_output=True
    )
    assert migrate.returncode == 0, migrate.stderr
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    platform = Process(
        python("manage.py", "runplatform", "--port", str(port)), env, tmp_path / "run.log"
    )
    with platform:
        wait_for(lambda: "Chat-Tonic is running" in platform.output(), 60, what="the banner")
        assert http_status(f"{base}/readyz") == 200
        assert http_status(f"{base}/dashboard/login/") == 200
        banner = platform.output()
        assert f"http://localhost:{port}/dashboard/" in banner
        assert "owner@demo.example" in banner and "agent@demo.example" in banner
        assert f"http://localhost:{port}/console/" in banner
        demo_page = next(
            line.split()[-1] for line in banner.splitlines() if "Widget demo page" in line
        )
        assert demo_page.startswith(f"http://localhost:{port}/demo/")
        assert http_status(demo_page.replace("localhost", "127.0.0.1")) == 200
        assert http_status(f"{base}/static/chattonic/widget.js") == 200  # the demo's widget
        assert platform.stop(signal.SIGINT) == 0
    assert "worker | " in platform.output() and "beat   | " in platform.output()
    assert http_status(f"{base}/healthz") is None
    assert not embedded.ping(tmp_path / "redis.sock")
