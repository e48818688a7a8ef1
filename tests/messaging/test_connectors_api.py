"""The API channel's outbound side: signed events to the tenant's webhook URL, the
``verify_signature`` helper tenants copy, and the refusal of non-public URLs."""

from __future__ import annotations

import json
import time

import pytest

from chattonic.core.outbound import REFUSED
from messaging.connectors import (
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    get_connector,
    verify_signature,
)
from messaging.connectors.api import sign
from tests.fakes import HANG, Answer
from tests.fakes.fixtures import *  # noqa: F403 - the fake platforms' fixtures
from tests.fakes.platforms import FakeTenantWebhook


@pytest.fixture
def api(fake_tenant_webhook):
    return {
        "signing_secret": fake_tenant_webhook.secret,
        "webhook_url": fake_tenant_webhook.base_url,
    }


def deliver(credentials, session, message=None, **kwargs):
    return get_connector("api").send(
        credentials=credentials,
        recipient_id="user-7",
        message=message or OutboundMessage("Hello", [{"title": "Yes", "payload": "YES"}]),
        session=session,
        timeout=kwargs.pop("timeout", 5.0),
    )


class TestApiDelivery:
    def test_the_tenant_receives_a_signed_event(self, fake_tenant_webhook, api, http_session):
        message = OutboundMessage("Hello", [{"title": "Yes", "payload": "YES"}], reference="m-42")
        result = deliver(api, http_session, message)
        [request] = fake_tenant_webhook.requests
        assert fake_tenant_webhook.signature_valid(request)
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-ChatTonic-Event"] == "message.created"
        assert request.headers["X-ChatTonic-Event-Id"] == "m-42"
        assert request.headers["X-ChatTonic-Signature"].startswith("v1=")
        event = request.json
        assert event["id"] == "m-42" and event["type"] == "message.created"
        assert event["data"] == {
            "recipient_id": "user-7",
            "text": "Hello",
            "quick_replies": [{"title": "Yes", "payload": "YES"}],
            "media": None,
            "sender": "bot",
            "agent": None,
            "message_id": "m-42",
        }
        assert abs(event["created"] - time.time()) < 60
        assert (result.external_id, result.status_code) == ("m-42", 200)
        assert fake_tenant_webhook.events == [event]

    def test_a_retry_carries_the_same_event_id(self, fake_tenant_webhook, api, http_session):
        fake_tenant_webhook.script(Answer(503, {}))
        message = OutboundMessage("Hi", reference="m-1")
        with pytest.raises(RetryableSendError):
            deliver(api, http_session, message)
        deliver(api, http_session, message)
        ids = [r.headers["X-ChatTonic-Event-Id"] for r in fake_tenant_webhook.requests]
        assert ids == ["m-1", "m-1"]

    def test_a_wrong_secret_is_refused_by_the_tenant(self, fake_tenant_webhook, api, http_session):
        with pytest.raises(PermanentSendError) as caught:
            deliver({**api, "signing_secret": "old"}, http_session)
        assert caught.value.status_code == 401
        assert fake_tenant_webhook.events == []

    def test_during_a_rotation_both_secrets_sign(self, fake_tenant_webhook, api, http_session):
        rotating = {
            **api,
            "signing_secret": "new-secret",
            "previous_signing_secret": api["signing_secret"],
        }
        deliver(rotating, http_session)
        header = fake_tenant_webhook.requests[0].headers["X-ChatTonic-Signature"]
        assert header.count("v1=") == 2
        assert len(fake_tenant_webhook.events) == 1

    @pytest.mark.parametrize(("status", "retry_after"), [(429, 30.0), (500, None), (503, None)])
    def test_throttling_and_server_errors_are_retryable(
        self, fake_tenant_webhook, api, http_session, status, retry_after
    ):
        headers = {"Retry-After": "30"} if retry_after else {}
        fake_tenant_webhook.script(Answer(status, {"error": "busy"}, headers=headers))
        with pytest.raises(RetryableSendError) as caught:
            deliver(api, http_session)
        assert (caught.value.status_code, caught.value.retry_after) == (status, retry_after)

    @pytest.mark.parametrize("status", [400, 404, 410, 301])
    def test_other_answers_are_permanent(self, fake_tenant_webhook, api, http_session, status):
        headers = {"Location": "https://elsewhere.example/"} if status == 301 else {}
        fake_tenant_webhook.script(Answer(status, {}, headers=headers))
        with pytest.raises(PermanentSendError) as caught:
            deliver(api, http_session)
        assert caught.value.status_code == status
        assert len(fake_tenant_webhook.requests) == 1  # a redirect is not followed

    def test_a_time_out_is_retryable(self, fake_tenant_webhook, api, http_session):
        fake_tenant_webhook.script(HANG)
        with pytest.raises(RetryableSendError) as caught:
            deliver(api, http_session, timeout=0.3)
        assert caught.value.maybe_sent
        fake_tenant_webhook.release()

    def test_other_events_share_the_envelope(self, fake_tenant_webhook, api, http_session):
        get_connector("api").deliver_event(
            credentials=api,
            event_type="message.status",
            data={"message_id": "m-42", "status": "delivered"},
            event_id="evt-9",
            session=http_session,
            timeout=5,
        )
        [event] = fake_tenant_webhook.events
        assert (event["id"], event["type"], event["data"]["status"]) == (
            "evt-9",
            "message.status",
            "delivered",
        )

    def test_there_are_no_platform_rate_limits(self, api):
        assert get_connector("api").rate_limits(api, "user-7") == []


class TestWebhookUrls:
    """The guard itself is tested in tests/chattonic/test_outbound.py; here, through the
    connector: a refused URL is a permanent error with one text, and nothing is sent."""

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8000/hook",
            "http://localhost/hook",
            "http://10.1.2.3/hook",
            "http://192.168.0.10/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/hook",
            "ftp://example.com/x",
            "file:///etc/passwd",
        ],
    )
    def test_internal_addresses_and_other_schemes_are_refused(self, url, http_session):
        with pytest.raises(PermanentSendError) as caught:
            deliver({"signing_secret": "s", "webhook_url": url}, http_session)
        assert (caught.value.reason, caught.value.platform_code) == (REFUSED, "refused_address")

    def test_nothing_is_sent_to_a_refused_url(self, http_session):
        with FakeTenantWebhook() as receiver:  # on 127.0.0.1, not allowed in this test
            credentials = {"signing_secret": "s", "webhook_url": receiver.base_url}
            with pytest.raises(PermanentSendError) as caught:
                deliver(credentials, http_session)
            assert caught.value.reason == REFUSED
            assert receiver.requests == []


class TestVerifySignature:
    BODY = b'{"id":"evt","type":"message.created"}'

    def header(self, secret="s", timestamp=None):
        timestamp = int(time.time()) if timestamp is None else timestamp
        return str(timestamp), f"v1={sign(secret, timestamp, self.BODY)}"

    def test_a_valid_signature(self):
        timestamp, signature = self.header()
        assert verify_signature("s", timestamp, self.BODY, signature)

    def test_a_tampered_body(self):
        timestamp, signature = self.header()
        assert not verify_signature("s", timestamp, self.BODY + b" ", signature)

    def test_a_reserialised_body(self):
        timestamp, signature = self.header()
        reserialised = json.dumps(json.loads(self.BODY)).encode()
        assert reserialised != self.BODY
        assert not verify_signature("s", timestamp, reserialised, signature)

    def test_a_wrong_secret(self):
        timestamp, signature = self.header(secret="other")
        assert not verify_signature("s", timestamp, self.BODY, signature)

    def test_a_missing_or_malformed_header(self):
        timestamp, _ = self.header()
        for signature in ("", "v0=abc", "garbage", None):
            assert not verify_signature("s", timestamp, self.BODY, signature)
        assert not verify_signature("s", "", self.BODY, self.header()[1])

    def test_an_old_timestamp_is_a_replay(self):
        timestamp, signature = self.header(timestamp=int(time.time()) - 301)
        assert not verify_signature("s", timestamp, self.BODY, signature)
        assert verify_signature("s", timestamp, self.BODY, signature, tolerance=600)

    def test_a_changed_timestamp_breaks_the_signature(self):
        timestamp, signature = self.header()
        assert not verify_signature("s", str(int(timestamp) + 1), self.BODY, signature)

    def test_any_of_several_signatures_may_match(self):
        timestamp, signature = self.header()
        both = f"v1={'0' * 64},{signature}"
        assert verify_signature("s", timestamp, self.BODY, both)


def test_the_snippet_in_the_tenant_docs_verifies_our_signatures():
    """docs/channels.md's Python verify_signature is what tenants copy: it must agree."""
    from pathlib import Path

    from django.conf import settings

    text = (Path(settings.BASE_DIR) / "docs" / "channels.md").read_text()
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(snippet, "docs/channels.md", "exec"), namespace)  # noqa: S102 - our own docs
    tenant_verify = namespace["verify_signature"]
    body = b'{"id":"e1","type":"message.created"}'
    timestamp = int(time.time())
    signature = f"v1={sign('s', timestamp, body)}"
    assert tenant_verify("s", str(timestamp), body, signature)
    assert not tenant_verify("s", str(timestamp), body + b" ", signature)
    assert not tenant_verify("t", str(timestamp), body, signature)
    assert not tenant_verify("s", str(timestamp - 301), body, signature)
