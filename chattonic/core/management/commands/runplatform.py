"""Start the whole platform in the foreground: web, worker and beat (and, on the embedded
defaults, the embedded Redis). Ctrl-C stops everything.

The children die with it whatever ends it: Ctrl-C or SIGTERM stop them in order (web, worker
and beat, then Redis), and each child asks the kernel for SIGTERM when its parent dies
(``PR_SET_PDEATHSIG``), so a SIGKILL of this process, or one that cuts a SIGTERM's clean-up
short, leaves nothing running either. Beat gets SIGKILL instead: once the embedded Redis has
gone with this process, beat's own clean shutdown retries the broker for ever (its schedule
lives in the database; nothing is lost). The worker's pool processes die with the worker
(billiard sets their parent-death signal), uvicorn's with uvicorn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand

from chattonic.core import embedded
from chattonic.core.embedded import die_with_parent
from chattonic.core.webserver import uvicorn_command
from chattonic.demo import demo_load, demo_urls
from chattonic.regions import here, regions


class Command(BaseCommand):
    help = "Run web (uvicorn), worker and beat together; Ctrl-C stops all."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")

    def handle(self, *args, host, port, workers, **options):
        redis_process = None
        if settings.EMBEDDED_REDIS:
            redis_process = embedded.start(settings.EMBEDDED_REDIS_SOCKET)
            self.stdout.write(f"embedded Redis on {settings.EMBEDDED_REDIS_SOCKET}")
        python = sys.executable
        commands = {
            "web": uvicorn_command(port, host=host, extra=("--workers", str(workers))),
            # -q: without Celery's banners (40 lines of configuration and task names).
            "worker": [python, "-m", "celery", "-A", "chattonic", "-q", "worker", "-l", "INFO"],
            "beat": [python, "-m", "celery", "-A", "chattonic", "-q", "beat", "-l", "INFO"],
        }
        death_signals = {"beat": signal.SIGKILL}
        processes: dict[str, subprocess.Popen] = {}
        stopping = threading.Event()

        def stop(*_):
            stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        base_url = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"  # noqa: S104
        env = dict(os.environ)
        if settings.DEBUG and "OUTBOUND_ALLOWED_HOSTS" not in env:
            # The demo bot's order lookup calls this port (settings allow only the port of
            # PUBLIC_BASE_URL, 8000 by default, to a DEBUG run's outbound requests).
            own = f"{urlsplit(base_url).hostname}:{port}"
            env["OUTBOUND_ALLOWED_HOSTS"] = ",".join([*settings.OUTBOUND_ALLOWED_HOSTS, own])
        try:
            # The demo bot, its order lookup pointed at this port, published before the web
            # process starts: its warm-up loads the version visitors will talk to.
            demo = demo_load(base_url)
            for name, command in commands.items():
                processes[name] = subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    bufsize=1,
                    env=env,
                    # Its own session (a Ctrl-C reaches this process only, which stops the
                    # children in order), and a SIGTERM from the kernel if this one dies.
                    start_new_session=True,
                    preexec_fn=die_with_parent(
                        os.getpid(), death_signals.get(name, signal.SIGTERM)
                    ),
                )
                threading.Thread(
                    target=self._relay, args=(name, processes[name]), daemon=True
                ).start()
            if self._wait_ready(base_url, processes["web"], stopping):
                self._banner(base_url, demo)
            while not stopping.is_set():
                exited = [name for name, p in processes.items() if p.poll() is not None]
                if exited:
                    self.stderr.write(f"{', '.join(exited)} exited; stopping the platform.")
                    break
                stopping.wait(0.5)
        finally:
            self.stdout.write("stopping web, worker and beat ...")
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes.values():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
            embedded.stop(redis_process)
        return None

    def _relay(self, name: str, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.stdout.write(f"{name:<6} | {line.rstrip()}")

    def _wait_ready(self, base_url: str, web: subprocess.Popen, stopping: threading.Event) -> bool:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not stopping.is_set() and web.poll() is None:
            try:
                # Ready (200), not only up: the web process has loaded its intent models
                # and the demo bot's matcher (a 503 is an HTTPError, an OSError: wait on).
                with urllib.request.urlopen(f"{base_url}/readyz", timeout=3):  # noqa: S310
                    return True
            except OSError:
                stopping.wait(0.2)
        return False

    def _banner(self, base_url: str, demo) -> None:
        lines = ["", "Chat-Tonic is running. Ctrl-C stops it.", ""]
        lines += [f"  {label:<18} {url}" for label, url in demo_urls(base_url, demo)]
        # The dashboard's header links every region; this run is one of them.
        others = [region for region in regions().values() if not region.is_here]
        if others:
            lines += [
                "",
                f"  This is {here().label}. Not started here (docs/regions.md runs both):",
            ]
            lines += [f"  {region.label:<18} {region.url}/dashboard/" for region in others]
        lines += [
            "",
            f"  Sign in as {demo.owner_email} (owner) or {demo.agent_email} (agent),",
            f"  password {demo.password}",
            "",
        ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
