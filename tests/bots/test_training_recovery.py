"""A published version never stays "training" for ever: when the broker does not take its
training task, the publishing process trains it in a thread; a version whose task was lost
anyway is queued again by beat's sweep."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from bots import services, tasks
from bots.models import Bot, BotVersion
from chattonic.schedule import PERIODIC_TASKS
from tests.factories import BotFactory, BotVersionFactory


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)  # the task is queued when the publish commits
def test_a_publish_while_the_broker_is_down_trains_in_the_web_process_and_goes_live(
    monkeypatch,
):
    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.bot_version_train, "delay", broker_down)
    bot = BotFactory()
    version = services.bot_publish(bot=bot)  # no error for the owner: the version is stored
    assert BotVersion.objects.get(pk=version.pk).training == BotVersion.Training.TRAINING

    def live() -> bool:
        return Bot.objects.get(pk=bot.pk).published_version_id == version.pk

    wait_for(live, 120, "the version trained in a thread to go live")
    version.refresh_from_db()
    assert version.training == BotVersion.Training.READY and version.nlu_model["format"]


@pytest.mark.django_db
def test_beat_queues_again_the_versions_still_training_after_two_minutes(monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.bot_version_train, "delay", queued.append)
    long_ago = timezone.now() - timedelta(seconds=services.STUCK_TRAINING_SECONDS + 1)
    stuck = BotVersionFactory(training=BotVersion.Training.TRAINING, published_at=long_ago)
    BotVersionFactory(training=BotVersion.Training.TRAINING)  # just published: its task runs
    BotVersionFactory(training=BotVersion.Training.READY, published_at=long_ago)
    BotVersionFactory(training=BotVersion.Training.FAILED, published_at=long_ago)

    tasks.bot_versions_train_stuck()
    assert queued == [stuck.pk]
    # What the queued task does: it trains the version and puts it live.
    services.bot_version_train(version_id=stuck.pk)
    stuck.refresh_from_db()
    assert stuck.training == BotVersion.Training.READY
    assert Bot.objects.get(pk=stuck.bot_id).published_version_id == stuck.pk
    assert any(p.task == "bots.tasks.bot_versions_train_stuck" for p in PERIODIC_TASKS)
