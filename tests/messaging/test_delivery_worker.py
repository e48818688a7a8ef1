"""A real Celery worker killed in the middle of a send, then started again: the message is
delivered exactly once (docs/channels.md, "Exactly once out").

The worker takes the task (acks_late: the broker keeps it unacknowledged), records attempt 1
and calls the fake WhatsApp, which holds the request and never takes the message. The worker
and its pool process are killed (SIGKILL: no clean-up runs). Once attempt 1's lease has run
out, the send sweep (beat) queues the message again; the new worker marks the attempt lost
(possibly sent), waits CHANNEL_SETTLE_SECONDS for a status carrying our reference (none
comes: the platform never took it) and sends again: the platform accepts it this time, and
the message ends up sent with one accepted send on the platform.
"""

from __future__ import annotations

import pytest

from conversations.models import Message
from messaging.models import DeliveryAttempt
from messaging.tasks import message_send
from tests.conversations.faults import descendants, kill_hard, sweep_beat
from tests.fakes import HANG, FakeWhatsApp
from tests.fakes.channels import make_channel
from tests.messaging.test_delivery import pending_reply
from tests.processes import Process, python, wait_for
from tests.processes import test_database_env as database_env

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

SEND_TIMEOUT = 3  # seconds; the lease of an attempt is 2 x this + 5
VISIBILITY = 2  # seconds before Redis hands an unacknowledged task to another worker


def worker(name: str) -> list[str]:
    """``celery worker`` with a short visibility time-out and a restore sweep every second,
    so that the test need not wait the production hour."""
    options = {
        "visibility_timeout": VISIBILITY,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
    code = (
        "import django, os; django.setup(); "
        "from chattonic.celery import app; "
        f"app.conf.broker_transport_options = {options!r}; "
        "app.worker_main(['worker', '-l', 'INFO', '--pool', 'prefork', '--concurrency', '1', "
        f"'-n', '{name}@%h', '--without-mingle', '--without-gossip'])"
    )
    return python("-c", code)


def test_a_worker_killed_mid_send_then_restarted_delivers_exactly_once(tmp_path, settings):
    with FakeWhatsApp() as fake:
        settings.WHATSAPP_API_BASE = fake.allow(settings).base_url
        message = pending_reply(make_channel("whatsapp"), "Your order shipped.")
        env = {
            **database_env(),
            "DJANGO_SETTINGS_MODULE": "chattonic.settings",
            "WHATSAPP_API_BASE": fake.base_url,
            "OUTBOUND_ALLOWED_HOSTS": fake.netloc,
            "CHANNEL_SEND_TIMEOUT": str(SEND_TIMEOUT),
            "CHANNEL_RATE_LIMITS": "0",
            "CHANNEL_SETTLE_SECONDS": "2",
        }
        fake.script(HANG)  # the first send reaches the platform and gets no answer

        first = Process(worker("first"), env, tmp_path / "worker-1.log")
        first.start()
        try:
            message_send.delay(message.pk)
            fake.wait_for_requests(1, timeout=60)
            assert DeliveryAttempt.objects.get(message=message).outcome == "sending"
            assert descendants(first.popen.pid), "the worker's pool process was not found"
            kill_hard(first)
        finally:
            first.stop()
        fake.release()  # the held request ends; nobody is listening for its answer

        second = Process(worker("second"), env, tmp_path / "worker-2.log")
        with second, Process(sweep_beat(), env, tmp_path / "beat.log"):
            wait_for(
                lambda: Message.objects.get(pk=message.pk).status != "pending",
                timeout=90,
                what="the restarted worker to finish the send",
            )
        output = second.output()

    message.refresh_from_db()
    assert message.status == "sent", (message.error, output[-3000:])
    outcomes = list(
        DeliveryAttempt.objects.filter(message=message)
        .order_by("number")
        .values_list("outcome", flat=True)
    )
    assert outcomes == ["lost", "sent"], output[-3000:]
    assert len(fake.sent.all()) == 1  # the platform accepted the message once
    assert len(fake.requests) == 2 and fake.requests[-1].answered == 200
