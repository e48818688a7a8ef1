"""``/healthz``: the process is up. ``/readyz``: what it depends on answers."""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 3.0


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")

    async def publish():
        # A group send reaches the layer's backend without leaving a subscription behind.
        await asyncio.wait_for(layer.group_send("readyz", {"type": "readyz.ping"}), CHECK_TIMEOUT)

    async_to_sync(publish)()


def check_broker() -> None:
    from chattonic.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=CHECK_TIMEOUT
        )


CHECKS = {
    "database": check_database,
    "channel_layer": check_channel_layer,
    "broker": check_broker,
}


@require_GET
def readyz(request):
    checks: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            logger.warning("readyz: %s failed: %s", name, exc)
            checks[name] = f"unreachable: {type(exc).__name__}: {exc}"[:300]
    failed = [name for name, result in checks.items() if result != "ok"]
    body = {"status": "unavailable" if failed else "ok", "failed": failed, "checks": checks}
    return JsonResponse(body, status=503 if failed else 200)
