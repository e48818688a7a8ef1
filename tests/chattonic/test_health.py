import pytest

from chattonic.celery import app as celery_app

pytestmark = pytest.mark.django_db

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_answers_200_when_everything_answers(client):
    from chattonic.core import health

    assert health.warmed(120)  # a warm-up that importing chattonic.asgi started, if any
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {
        "database": "ok",
        "channel_layer": "ok",
        "broker": "ok",
        "warm_up": "ok",
    }


def test_readyz_answers_503_while_the_process_loads_its_intent_models(client, caplog):
    """A web process is not ready until its warm-up thread (bots.nlu.encoder) is done: the
    load balancer sends its visitors elsewhere meanwhile. Loading is a normal state: no
    warning or error is logged for it, and nothing at INFO either (make run's start polls
    /readyz four times a second, and printed 37 such lines)."""
    import logging
    import threading

    from bots.nlu import encoder
    from chattonic.core import health

    release = threading.Event()
    thread = encoder.warm_up_in_background(then=lambda: release.wait(30))
    assert not health.warmed(0)
    try:
        with caplog.at_level(logging.DEBUG):
            response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["failed"] == ["warm_up"]
        assert not [r for r in caplog.records if r.levelno >= logging.INFO]
        assert "readyz: warm_up: still loading intent models" in caplog.text  # at DEBUG
        assert response.json()["checks"]["warm_up"] == "still loading intent models"
    finally:
        release.set()
        thread.join(60)
    assert health.warmed(120)
    assert client.get("/readyz").status_code == 200


def test_a_failed_warm_up_leaves_the_process_ready(client):
    """The models then load at the first message that needs them, as before."""
    from bots.nlu import encoder

    def fails():
        raise RuntimeError("no database yet")

    from chattonic.core import health

    encoder.warm_up_in_background(then=fails).join(60)
    assert health.warmed(120)
    assert client.get("/readyz").status_code == 200


def test_readyz_names_the_channel_layer_and_broker_when_redis_is_unreachable(
    client, settings, monkeypatch, caplog
):
    import logging

    layer = dict(settings.CHANNEL_LAYERS["default"])
    layer["CONFIG"] = {**layer["CONFIG"], "hosts": [{"address": CLOSED_PORT_URL}]}
    settings.CHANNEL_LAYERS = {"default": layer}
    monkeypatch.setattr(celery_app.conf, "broker_url", CLOSED_PORT_URL)

    with caplog.at_level(logging.WARNING):
        response = client.get("/readyz")

    assert response.status_code == 503
    # A dependency that fails is worth a line: the check's warning, the request's error.
    logged = {(r.name, r.levelname) for r in caplog.records}
    assert {("chattonic.core.health", "WARNING"), ("django.request", "ERROR")} <= logged
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["channel_layer", "broker"]
    assert body["checks"]["database"] == "ok"
    assert "unreachable" in body["checks"]["channel_layer"]
