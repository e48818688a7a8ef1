"""The fake platforms themselves: safe under concurrent senders, scripts consumed in order,
waiting without sleeps. The delivery tasks' tests and the benchmark rely on this."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from chattonic.core import outbound
from messaging.connectors import OutboundMessage, RetryableSendError, get_connector
from tests.fakes import HANG, Answer, FakeTelegram, FakeWhatsApp

CREDENTIALS = {"access_token": "wa-access-token", "phone_number_id": "1"}


def test_concurrent_sends_are_all_recorded_with_distinct_ids(settings):
    with FakeWhatsApp() as fake:
        settings.WHATSAPP_API_BASE = fake.allow(settings).base_url
        connector = get_connector("whatsapp")
        local = threading.local()

        def one(index: int) -> str:
            if not hasattr(local, "session"):
                local.session = outbound.session()
            return connector.send(
                credentials=CREDENTIALS,
                recipient_id=f"1555000{index:04d}",
                message=OutboundMessage(f"message {index}"),
                session=local.session,
                timeout=10,
            ).external_id

        with ThreadPoolExecutor(max_workers=16) as pool:
            ids = list(pool.map(one, range(200)))
        assert len(set(ids)) == 200
        assert len(fake.sent.all()) == len(fake.requests) == 200
        texts = sorted(item["text"]["body"] for item in fake.sent.all())
        assert texts == sorted(f"message {i}" for i in range(200))


def test_a_script_is_consumed_in_order_then_the_contract_applies(settings):
    with FakeTelegram() as fake:
        settings.TELEGRAM_API_BASE = fake.allow(settings).base_url
        fake.script(fake.flood(retry_after=2), Answer(500, {"ok": False}))
        credentials = {"bot_token": fake.bot_token}
        outcomes = []
        with outbound.session() as session:
            for _ in range(3):
                try:
                    result = get_connector("telegram").send(
                        credentials=credentials,
                        recipient_id="7",
                        message=OutboundMessage("hi"),
                        session=session,
                        timeout=5,
                    )
                    outcomes.append(result.status_code)
                except RetryableSendError as exc:
                    outcomes.append((exc.status_code, exc.retry_after))
        assert outcomes == [(429, 2.0), (500, None), 200]
        assert [r.answered for r in fake.requests] == [429, 500, 200]
        assert fake.pending_script == 0


def test_wait_for_requests_blocks_until_they_arrive():
    with FakeWhatsApp() as fake:
        fake.script(HANG)
        done = threading.Event()

        def call():
            try:
                requests.post(fake.base_url + "/1/messages", json={}, timeout=5)
            finally:
                done.set()

        threading.Thread(target=call, daemon=True).start()
        [request] = fake.wait_for_requests(1, timeout=5)
        assert request.path.endswith("/1/messages")
        assert not done.is_set()  # still held by the HANG answer
        fake.release()
        assert done.wait(5)


def test_wait_for_requests_fails_clearly():
    with FakeWhatsApp() as fake, pytest.raises(AssertionError, match="expected 1"):
        fake.wait_for_requests(1, timeout=0.05)
