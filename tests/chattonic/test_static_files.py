"""Static files as a deployment serves them: collected (``collectstatic``), then served by
whitenoise from the web process, compressed with Brotli or gzip as the browser asks."""

import gzip
import os
import subprocess
import urllib.request

import brotli
import pytest
from django.conf import settings

from chattonic.core.webserver import uvicorn_command
from tests.processes import ROOT, Process, free_port, http_status, python, wait_for

pytestmark = pytest.mark.processes

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-0123456789",
    "CHATTONIC_ENCRYPTION_KEY": "x8Gm2vYbY0iXk0c7R3b0wq2mN5s1uQW9yJtLxVh3K0E=",
    "ALLOWED_HOSTS": "127.0.0.1",
    "USE_X_FORWARDED_PROTO": "1",
    "PYTHONUNBUFFERED": "1",
}


def get(url: str, **headers: str):
    # As behind the load balancer, which terminates TLS (else the process redirects to https).
    request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https", **headers})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.headers, response.read()


def test_a_deployed_web_process_serves_the_widget_with_brotli_or_gzip(tmp_path):
    env = {**os.environ, **PRODUCTION, "CHATTONIC_VAR_DIR": str(tmp_path)}
    env["STATIC_ROOT"] = str(tmp_path / "static")
    # The platform's own files only: Brotli's best compression of the admin's and the API
    # docs' large scripts takes most of a minute, and changes nothing here.
    others = ["-i", "admin", "-i", "rest_framework", "-i", "drf_spectacular_sidecar"]
    collect = subprocess.run(
        python("manage.py", "collectstatic", "--noinput", *others),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert collect.returncode == 0, collect.stderr
    source = (settings.BASE_DIR / "static" / "chattonic" / "widget.js").read_bytes()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with Process(uvicorn_command(port), env, tmp_path / "web.log") as web:
        wait_for(lambda: http_status(f"{base}/healthz") is not None, 60, what="the web process")
        url = f"{base}/static/chattonic/widget.js"  # the address of the embedding snippet

        headers, body = get(url, **{"Accept-Encoding": "gzip, deflate, br"})
        assert headers["Content-Encoding"] == "br", web.output()
        assert "Accept-Encoding" in headers["Vary"]
        assert headers["Content-Type"].startswith("text/javascript")
        assert brotli.decompress(body) == source
        assert len(body) < len(source) / 3
        # docs/webchat.md: its address has no version in it, so it is kept for a minute.
        assert "max-age=60" in headers["Cache-Control"]

        headers, body = get(url, **{"Accept-Encoding": "gzip"})
        assert headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(body) == source

        headers, body = get(url)
        assert headers.get("Content-Encoding") is None
        assert body == source
