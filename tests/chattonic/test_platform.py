"""Settings, the periodic schedule and the channel layer's bound."""

import asyncio
import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.core import checks
from django.test import override_settings
from django_celery_beat.models import PeriodicTask

from chattonic.core.layers import DropOldestQueue
from chattonic.schedule import PERIODIC_TASKS

ROOT = settings.BASE_DIR


def manage(*args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_missing_secret_key_without_debug_is_a_clear_startup_error(tmp_path):
    result = manage("check", env={"CHATTONIC_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_a_missing_encryption_key_without_debug_is_a_clear_startup_error(tmp_path):
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "CHATTONIC_ENCRYPTION_KEY"}
    result = manage("check", env={**env, "CHATTONIC_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "CHATTONIC_ENCRYPTION_KEY is not set" in result.stderr


PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-0123456789",
    "CHATTONIC_ENCRYPTION_KEY": "x8Gm2vYbY0iXk0c7R3b0wq2mN5s1uQW9yJtLxVh3K0E=",
    "ALLOWED_HOSTS": "chat.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://chat.example.com",
    "USE_X_FORWARDED_PROTO": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "EMAIL_HOST": "smtp.example.com",
    "OPERATOR_EMAILS": "ops@example.com",
}


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={**PRODUCTION_ENV, "CHATTONIC_VAR_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


CONSOLE_MAIL = "django.core.mail.backends.console.EmailBackend"
SMTP_MAIL = "django.core.mail.backends.smtp.EmailBackend"


def deploy_check_ids() -> set[str]:
    return {message.id for message in checks.run_checks(include_deployment_checks=True)}


@override_settings(DEBUG=False, EMAIL_BACKEND=CONSOLE_MAIL, ADMINS=[])
def test_check_deploy_warns_of_mail_to_the_console_and_no_operators():
    assert {"tenancy.W001", "tenancy.E002"} <= deploy_check_ids()
    # No operator address is an error of every `manage.py check`, not only at deployment.
    assert "tenancy.E002" in {m.id for m in checks.run_checks()}
    assert "tenancy.W001" not in {m.id for m in checks.run_checks()}


@override_settings(DEBUG=False, EMAIL_BACKEND=SMTP_MAIL, ADMINS=[("Operators", "ops@x.example")])
def test_check_deploy_is_quiet_with_mail_delivered_and_operators_named():
    assert not {"tenancy.W001", "tenancy.E002"} & deploy_check_ids()


def test_without_operator_addresses_and_debug_off_the_checks_fail_loudly(tmp_path):
    env = {**PRODUCTION_ENV, "OPERATOR_EMAILS": "", "CHATTONIC_VAR_DIR": str(tmp_path)}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "tenancy.E002" in result.stderr and "OPERATOR_EMAILS is empty" in result.stderr
    # With DEBUG on (development), nobody is expected to be told: it passes.
    assert manage("check", env={**env, "DEBUG": "1"}).returncode == 0


@override_settings(DEBUG=True, EMAIL_BACKEND=CONSOLE_MAIL, ADMINS=[("Operators", "ops@x.example")])
def test_the_console_mail_backend_is_fine_for_development():
    assert "tenancy.W001" not in deploy_check_ids()


def test_secret_key_fallbacks_come_from_the_environment(tmp_path):
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY_FALLBACKS)",
        env={
            **PRODUCTION_ENV,
            "CHATTONIC_VAR_DIR": str(tmp_path),
            "SECRET_KEY_FALLBACKS": "first-old-key, second-old-key",
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['first-old-key', 'second-old-key']"


@pytest.mark.django_db
def test_a_fresh_database_has_the_periodic_schedule():
    installed = set(PeriodicTask.objects.values_list("name", "task"))
    assert {(p.name, p.task) for p in PERIODIC_TASKS} <= installed


@pytest.mark.django_db
def test_reinstalling_keeps_an_operators_pause():
    from chattonic.core.services import schedule_install

    task = PeriodicTask.objects.get(name=PERIODIC_TASKS[0].name)
    task.enabled = False
    task.save()
    schedule_install()
    task.refresh_from_db()
    assert task.enabled is False
    assert PeriodicTask.objects.filter(name=task.name).count() == 1


async def test_a_slow_consumer_keeps_only_the_newest_messages():
    queue = DropOldestQueue(maxsize=3)
    for n in range(5):
        queue.put_nowait(n)
    assert queue.dropped == 2
    assert [await queue.get() for _ in range(3)] == [2, 3, 4]


async def test_the_channel_layer_carries_group_messages():
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("platform-test", channel)
    await layer.group_send("platform-test", {"type": "test.ping", "n": 1})
    assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "test.ping", "n": 1}
    await layer.group_discard("platform-test", channel)


async def test_the_channel_layer_knows_who_else_listens_to_a_group():
    """subscriber_counts (asked from a thread or a lane worker process, with a layer of no
    event loop, as the web chat lane does), then others_listening on the loop: another
    channel of this process, or another process's subscription (counted by Redis), makes a
    group heard; the asking channel alone does not."""
    from channels.layers import get_channel_layer

    from chattonic.core.layers import BoundedPubSubLoopLayer

    layer = get_channel_layer()
    loop_layer = layer.loop_layer()
    counting = layer.counting_layer()
    assert counting is not loop_layer and counting is layer.counting_layer()

    async def heard(pairs):
        groups = [group for group, _ in pairs]
        counts = await asyncio.to_thread(counting.subscriber_counts, groups)
        return loop_layer.others_listening(pairs, counts)

    group = f"listeners-{time.time_ns()}"
    mine, neighbour = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(group, mine)
    assert await heard([(group, mine)]) == set()

    await layer.group_add(group, neighbour)
    assert await heard([(group, mine)]) == {(group, mine)}
    await layer.group_discard(group, neighbour)
    assert await heard([(group, mine)]) == set()

    # Another process: a loop layer of its own, with its own Redis subscription.
    elsewhere = BoundedPubSubLoopLayer(*layer._args, **layer._kwargs, channel_layer=layer)
    try:
        await elsewhere.group_add(group, await elsewhere.new_channel())
        deadline = time.monotonic() + 10
        while not await heard([(group, mine)]):
            assert time.monotonic() < deadline, "the other subscription was never counted"
            await asyncio.sleep(0.01)  # the SUBSCRIBE is on its way to Redis
    finally:
        await elsewhere.flush()
    await layer.group_discard(group, mine)


def test_the_web_process_hides_what_it_loaded_at_start_from_the_collector():
    """chattonic.asgi freezes the objects of start-up (gc.freeze): a fresh interpreter that
    loads the app has them out of the collector's generations."""
    code = (
        "import gc, os; os.environ['DEBUG'] = '1';"
        "import chattonic.asgi; print(gc.get_freeze_count())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert int(done.stdout.strip().splitlines()[-1]) > 10_000
