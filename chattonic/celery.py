"""The Celery application: the worker and beat processes of every deployment."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chattonic.settings")

app = Celery("chattonic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
