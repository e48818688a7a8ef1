"""``/healthz``: the process is up. ``/readyz``: what it depends on answers, and what it loads
as it starts is loaded."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0  # seconds each dependency has to answer; they are asked at once


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def check_database() -> None:
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET statement_timeout = %s", [int(CHECK_TIMEOUT * 1000)])
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # this thread's own connection: none is left behind


def check_channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")

    async def publish():
        # A group send reaches the layer's backend without leaving a subscription behind.
        await asyncio.wait_for(layer.group_send("readyz", {"type": "readyz.ping"}), CHECK_TIMEOUT)

    async_to_sync(publish)()


def check_broker() -> None:
    """A PING on the broker's Redis, with socket time-outs: a Redis that accepts connections
    and never answers (frozen, a dead link) fails the check instead of holding it."""
    from chattonic.celery import app

    url = app.conf.broker_url
    if url.startswith("redis+socket://"):
        url = "unix://" + url[len("redis+socket://") :]
    client = redis.Redis.from_url(
        url, socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=CHECK_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()


# What this process still loads before it serves visitors well (a web process: the intent
# matcher's models and its launched bots' matchers, bots.nlu.encoder). Until that is done the
# process is not ready: a load balancer sends it nobody, rather than visitors whose messages
# would all wait for the loading (0.9 s, measured in bench/webchat.py after a start).
_warming: set[str] = set()
_warming_changed = threading.Condition()


def warming_started(what: str) -> None:
    with _warming_changed:
        _warming.add(what)


def warming_done(what: str) -> None:
    with _warming_changed:
        _warming.discard(what)
        _warming_changed.notify_all()


def warmed(timeout: float) -> bool:
    """Wait until nothing is loading any more (at most ``timeout`` seconds); whether so."""
    with _warming_changed:
        return _warming_changed.wait_for(lambda: not _warming, timeout)


class NotReady(RuntimeError):
    """A check's own answer, reported as it is: the dependency answered, the process is not
    ready yet (an unreachable one is reported with its error)."""


def check_warm_up() -> None:
    with _warming_changed:
        pending = sorted(_warming)
    if pending:
        raise NotReady(f"still loading {', '.join(pending)}")


CHECKS = {
    "database": check_database,
    "channel_layer": check_channel_layer,
    "broker": check_broker,
    "warm_up": check_warm_up,
}


def _run(check, results: dict, name: str, not_yet: set) -> None:
    try:
        check()
        results[name] = "ok"
    except NotReady as exc:  # a normal state (a start's warm-up): no warning
        logger.debug("readyz: %s: %s", name, exc)
        results[name] = str(exc)
        not_yet.add(name)  # set.add: atomic, whichever thread
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        logger.warning("readyz: %s failed: %s", name, exc)
        results[name] = f"unreachable: {type(exc).__name__}: {exc}"[:300]


@require_GET
def readyz(request):
    """Every dependency is asked at once, each in a thread of its own, and the answer waits
    for them at most CHECK_TIMEOUT (plus a margin) in all: a dependency that does not answer
    is reported as timed out, whatever its client does (its thread ends on its own)."""
    results: dict[str, str] = {}
    not_yet: set[str] = set()  # the checks that answered "not yet" (NotReady)
    threads = [
        threading.Thread(
            target=_run, args=(check, results, name, not_yet), daemon=True, name=f"readyz-{name}"
        )
        for name, check in CHECKS.items()
    ]
    deadline = time.monotonic() + CHECK_TIMEOUT + 0.5
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    checks = {
        name: results.get(name, f"unreachable: no answer within {CHECK_TIMEOUT:g} s")
        for name in CHECKS
    }
    failed = [name for name, result in checks.items() if result != "ok"]
    body = {"status": "unavailable" if failed else "ok", "failed": failed, "checks": checks}
    response = JsonResponse(body, status=503 if failed else 200)
    if failed and set(failed) <= not_yet:
        # Only loading (make run's start polls this every quarter second): not an error for
        # django.request to log. A dependency that fails is logged as before.
        response._has_been_logged = True
    return response
