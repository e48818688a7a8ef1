"""What the network benches share: the platform set up for a run, one uvicorn server process,
and the count of what the run stored."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from chattonic.core.webserver import uvicorn_command  # the benches put the root on the path

ROOT = Path(__file__).resolve().parents[1]


def production_environment() -> None:
    """The server as in production unless the environment says otherwise: DEBUG off (it
    records every query), throwaway secret and encryption keys, local hosts, warnings only in
    the log; the embedded defaults in var/bench (not `make run`'s) unless DATABASE_URL and
    REDIS_URL say PostgreSQL + Redis."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chattonic.settings")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if os.environ["DEBUG"].lower() in ("0", "false", "no", "off", ""):
        os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
        os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
        # Plain HTTP stands for what the TLS proxy in front would pass on.
        os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
        if not os.environ.get("CHATTONIC_ENCRYPTION_KEY"):
            from cryptography.fernet import Fernet

            os.environ["CHATTONIC_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        os.environ.setdefault("CHATTONIC_VAR_DIR", str(ROOT / "var" / "bench"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def configuration() -> str:
    """The run's database and Redis, for the bench's heading."""
    from django.conf import settings

    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    redis = "embedded Redis" if settings.EMBEDDED_REDIS else "Redis"
    return f"{database} + {redis}"


def start_server(
    app: str, port: int, log_path: Path, *, env: dict[str, str], extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, object]:
    """Start ``uvicorn app`` on 127.0.0.1:port (its output in log_path) and wait until it
    listens. BENCH_PROFILE=<file> runs the server under cProfile, for hunting costs."""
    env = {**env, "PYTHONUNBUFFERED": "1"}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the server
    profile = ["-m", "cProfile", "-o", env["BENCH_PROFILE"]] if "BENCH_PROFILE" in env else []
    command = uvicorn_command(
        port, app=app, extra=("--lifespan", "off", "--log-level", "warning", *extra)
    )
    command[1:1] = profile  # python [-m cProfile -o FILE] -m uvicorn ...
    server = subprocess.Popen(
        command,
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
            if _ready(port):
                return server, log
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            raise SystemExit(f"the server did not get ready; see {log_path}") from None
        time.sleep(0.1)


def _ready(port: int) -> bool:
    """Whether the server answers ``/readyz`` with 200, as a load balancer would ask before
    sending it anyone (a web process loads its intent models first: chattonic/core/health.py);
    an application without that page (404) is ready once it answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code == 404


def stop_server(server: subprocess.Popen, log, timeout: float = 120) -> None:
    """Stop it as Ctrl-C would (a profile is written then), killing it if it hangs."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    log.close()


def platform_ready(keep_redis: list) -> None:
    """Django set up, the embedded Redis started when that is the configuration (appended to
    keep_redis, so that it lives as long as the run), the database migrated."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from chattonic.core import embedded

    if settings.EMBEDDED_REDIS:
        keep_redis.append(embedded.start(settings.EMBEDDED_REDIS_SOCKET))
    call_command("migrate", verbosity=0, interactive=False)


def stored_inbound(tenant_id: int) -> tuple[int, int]:
    """Inbound messages stored for the bench's tenant, and distinct external ids among them."""
    from django.db import connections
    from django.db.models import Count

    from conversations.models import Message

    rows = Message.objects.filter(tenant_id=tenant_id, direction="in").aggregate(
        total=Count("id"), distinct=Count("external_id", distinct=True)
    )
    connections.close_all()
    return rows["total"], rows["distinct"]
