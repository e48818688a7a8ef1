"""The flow's HTTP node end to end: the engine's action, the Celery task (eager, in process)
against a local HTTP server, and the engine resumed with the outcome: success, timeout, error,
a late or repeated answer, and the guard against the platform's own network."""

from __future__ import annotations

import time

import pytest

from bots.tasks import bot_http_request, perform_http_request
from chattonic.core.outbound import REFUSED
from conversations.models import Conversation, Message
from conversations.services import bot_http_resume, webchat_open
from tests.conversations.receiving import visitor_says
from tests.factories import BotFactory
from tests.fakes.server import DROP, HANG, Answer, FakeServer, Recorded

pytestmark = pytest.mark.django_db

VISITOR = "a" * 32


class FakeShop(FakeServer):
    """A tenant's order API: ``POST /orders/<n>`` answers the order's status."""

    name = "shop"

    def handle(self, request: Recorded) -> Answer:
        if request.method == "POST" and request.path.startswith("/orders/"):
            number = request.path.rsplit("/", 1)[1]
            return Answer(200, {"order": {"number": number, "status": "shipped"}})
        return Answer(404, {"error": "no such order"})


@pytest.fixture
def shop():
    with FakeShop() as fake:
        yield fake


@pytest.fixture
def shop_allowed(shop, settings):
    shop.allow(settings)  # the fake listens on 127.0.0.1: OUTBOUND_ALLOWED_HOSTS names it


def order_flow(base_url: str, timeout: float = 5) -> dict:
    return {
        "start": "ask",
        "main": "menu",
        "intents": [{"name": "pricing", "phrases": ["how much is it", "prices", "pricing"]}],
        "nodes": {
            "ask": {
                "type": "question",
                "text": "Your order number?",
                "variable": "order",
                "validation": "number",
                "next": "lookup",
            },
            "lookup": {
                "type": "http",
                "method": "POST",
                "url": base_url + "/orders/{{order}}",
                "headers": {"X-Token": "t-{{order}}"},
                "body": {"order": "{{order}}"},
                "timeout": timeout,
                "save": {"state": "order.status"},
                "status_variable": "code",
                "next": "found",
                "on_failure": "failed",
            },
            "found": {"type": "message", "text": "Order {{order}} is {{state}}.", "next": "menu"},
            "failed": {
                "type": "message",
                "text": "Sorry, no answer from the shop ({{code|no status}}).",
                "next": "menu",
            },
            "menu": {"type": "router", "routes": {"pricing": "prices"}},
            "prices": {"type": "message", "text": "Plans start at $10.", "next": "menu"},
        },
    }


def chat(base_url: str, **kwargs) -> Conversation:
    bot = BotFactory(draft_definition=order_flow(base_url, **kwargs))
    conversation, _ = webchat_open(bot=bot, visitor_id=VISITOR, sandbox=True)
    return conversation


def say(conversation: Conversation, text: str) -> None:
    visitor_says(conversation, text)


def bot_texts(conversation: Conversation) -> list[str]:
    return list(
        Message.objects.filter(conversation=conversation, sender=Message.Sender.BOT)
        .order_by("pk")
        .values_list("text", flat=True)
    )


def state(conversation: Conversation) -> dict:
    return Conversation.objects.get(pk=conversation.pk).engine_state


def test_success_saves_the_responses_fields_and_goes_on(
    shop, shop_allowed, django_capture_on_commit_callbacks
):
    conversation = chat(shop.base_url)
    with django_capture_on_commit_callbacks(execute=True):
        say(conversation, "1234")
    (request,) = shop.requests
    assert (request.method, request.path) == ("POST", "/orders/1234")
    assert request.headers["X-Token"] == "t-1234"
    assert request.json == {"order": 1234}  # a lone placeholder keeps the number a number
    assert bot_texts(conversation)[-1] == "Order 1234 is shipped."
    after = state(conversation)
    assert after["vars"]["code"] == 200 and after["status"] == "waiting"
    assert Conversation.objects.get(pk=conversation.pk).awaiting_action == ""


def test_a_timeout_takes_the_failure_branch(shop, shop_allowed, django_capture_on_commit_callbacks):
    shop.script(HANG)
    conversation = chat(shop.base_url, timeout=0.3)
    with django_capture_on_commit_callbacks(execute=True):
        say(conversation, "7")
    assert len(shop.requests) == 1
    assert bot_texts(conversation)[-1] == "Sorry, no answer from the shop (no status)."
    assert state(conversation)["vars"]["code"] is None


@pytest.mark.parametrize(
    "answer,shown",
    [(Answer(503, {"error": "down"}), "503"), (Answer(404, "nope"), "404"), (DROP, "no status")],
)
def test_an_error_takes_the_failure_branch(
    shop, shop_allowed, django_capture_on_commit_callbacks, answer, shown
):
    shop.script(answer)
    conversation = chat(shop.base_url)
    with django_capture_on_commit_callbacks(execute=True):
        say(conversation, "7")
    assert bot_texts(conversation)[-1] == f"Sorry, no answer from the shop ({shown})."
    assert "state" not in state(conversation)["vars"]


def test_a_message_during_the_request_waits_for_its_answer(
    shop, shop_allowed, django_capture_on_commit_callbacks
):
    conversation = chat(shop.base_url)
    with django_capture_on_commit_callbacks() as pending:
        say(conversation, "1234")
    awaiting = Conversation.objects.get(pk=conversation.pk).awaiting_action
    assert awaiting and state(conversation)["status"] == "http"

    with django_capture_on_commit_callbacks(execute=True):
        say(conversation, "how much is it")  # kept until the response is in
    assert Conversation.objects.get(pk=conversation.pk).awaiting_action == awaiting
    assert bot_texts(conversation)[-1] == "Your order number?"

    with django_capture_on_commit_callbacks(execute=True):
        for callback in pending:
            callback()  # the worker's turn: the request, then the engine resumed
    assert bot_texts(conversation)[-2:] == ["Order 1234 is shipped.", "Plans start at $10."]
    assert Conversation.objects.get(pk=conversation.pk).awaiting_action == ""

    with django_capture_on_commit_callbacks(execute=True):
        for callback in pending:
            callback()  # the task delivered twice: answered once
    assert len(shop.requests) == 1
    assert bot_texts(conversation)[-1] == "Plans start at $10."


def test_a_request_given_up_is_never_made_and_its_late_answer_ignored(
    shop, shop_allowed, django_capture_on_commit_callbacks
):
    conversation = chat(shop.base_url)
    with django_capture_on_commit_callbacks() as pending:
        say(conversation, "1234")
    with django_capture_on_commit_callbacks(execute=True):
        say(conversation, "start over")  # a global intent acts at once
    assert state(conversation)["node"] == "ask"
    replies = bot_texts(conversation)
    with django_capture_on_commit_callbacks(execute=True):
        for callback in pending:
            callback()
    assert shop.requests == []
    assert bot_texts(conversation) == replies


def test_the_engine_ignores_an_answer_to_another_request_than_the_one_pending(
    shop, shop_allowed, django_capture_on_commit_callbacks
):
    conversation = chat(shop.base_url)
    with django_capture_on_commit_callbacks():
        say(conversation, "1234")
    pending = Conversation.objects.get(pk=conversation.pk)
    seq = pending.engine_state["seq"]
    late = {"status": 200, "json": {"order": {"status": "lost"}}, "error": None}
    with django_capture_on_commit_callbacks(execute=True):
        replies = bot_http_resume(
            conversation=pending,
            action_id=pending.awaiting_action,
            http=late,
            request_id=seq - 1,
        )
    assert replies == []
    after = Conversation.objects.get(pk=conversation.pk)
    assert after.engine_state == pending.engine_state
    assert after.awaiting_action == pending.awaiting_action  # still waiting for its own

    with django_capture_on_commit_callbacks(execute=True):
        bot_http_request(
            conversation.pk,
            after.awaiting_action,
            {"method": "POST", "url": shop.base_url + "/orders/1234"},
            request_id=seq,
        )
    assert bot_texts(conversation)[-1] == "Order 1234 is shipped."


# --- The guard: a flow must not reach the platform's own network ------------------------------


def test_private_destinations_are_refused_unless_the_deployment_allows_them(
    shop, django_capture_on_commit_callbacks
):
    conversation = chat(shop.base_url)  # 127.0.0.1, not in OUTBOUND_ALLOWED_HOSTS here
    with django_capture_on_commit_callbacks(execute=True):
        say(conversation, "1234")
    assert shop.requests == []
    assert bot_texts(conversation)[-1] == "Sorry, no answer from the shop (no status)."


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/admin/",
        "http://localhost/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://172.16.5.4/",
        "http://100.64.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:6379/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fd00::1]/",
        "http://224.0.0.1/",
        "ftp://example.com/file",
        "file:///etc/passwd",
        "gopher://x/",
    ],
)
def test_internal_addresses_and_other_schemes_are_refused(url):
    outcome = perform_http_request({"url": url})
    assert outcome == {"status": None, "json": None, "error": "error", "detail": REFUSED}


def test_a_url_without_a_host_is_an_error():
    outcome = perform_http_request({"url": "http:///nohost"})
    assert (outcome["status"], outcome["error"]) == (None, "error")


def test_a_large_answer_is_cut_and_read_as_no_json(shop, shop_allowed):
    """docs/bots.md: answers are read up to 256 kB."""
    shop.script(Answer(200, {"blob": "x" * 262_000}), Answer(200, {"blob": "x" * 400_000}))
    outcome = perform_http_request({"method": "POST", "url": shop.base_url + "/orders/1"})
    assert (outcome["status"], len(outcome["json"]["blob"])) == (200, 262_000)
    outcome = perform_http_request({"method": "POST", "url": shop.base_url + "/orders/1"})
    assert (outcome["status"], outcome["json"], outcome["error"]) == (200, None, None)


def test_a_slowly_sent_body_is_cut_at_the_deadline(shop, shop_allowed):
    """Issue 18, finding 8: the headers at once, then one byte every 0.5 s for 10 s, with a
    2 s time-out: the deadline covers the body too, so the failure comes after 2 s, not 10."""
    shop.script(Answer(200, {"order": {"status": "x" * 12}}, trickle=0.5))
    started = time.monotonic()
    outcome = perform_http_request(
        {"url": shop.base_url + "/orders/7", "method": "POST", "timeout": 2}
    )
    took = time.monotonic() - started
    assert outcome == {"status": None, "json": None, "error": "timeout"}
    assert 1.9 <= took < 3.0, took


def test_the_deadline_reaches_the_connections_socket(shop, shop_allowed):
    """The deadline relies on urllib3 handing out the response's connection and its socket
    (``HTTPResponse.connection.sock``): this fails if an upgrade takes them away."""
    from chattonic.core import outbound

    response = outbound.request("POST", shop.base_url + "/orders/7", stream=True, timeout=2)
    try:
        assert hasattr(response.raw.connection.sock, "settimeout")
        assert response.raw.read1(16) != b""
    finally:
        response.close()
