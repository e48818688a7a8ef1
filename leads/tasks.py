"""Celery tasks of the leads."""

from __future__ import annotations

import logging

import requests
from celery import shared_task

from chattonic.core.credentials import CredentialsUnreadable
from chattonic.core.outbound import REFUSED, OutboundRefused
from chattonic.core.redact import redact
from leads.models import Lead, LeadWebhook
from leads.services import lead_webhook_failure_record, lead_webhook_post

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=6)
def lead_webhook_deliver(self, lead_id: int) -> int:
    """POST ``lead.created`` to the tenant's active lead webhooks; retried with backoff on a
    network error, a 429 or a 5xx (not on a refused address: that needs a new URL). Returns
    how many webhooks took it."""

    lead = Lead.objects.select_related("contact").filter(pk=lead_id).first()
    if lead is None:
        return 0  # erased or deleted meanwhile
    done = 0
    retry = False
    for webhook in LeadWebhook.objects.for_tenant(lead.tenant_id).filter(is_active=True):
        try:
            status = lead_webhook_post(webhook=webhook, lead=lead)
        except OutboundRefused:
            lead_webhook_failure_record(webhook=webhook, error=REFUSED)
            continue
        except CredentialsUnreadable as exc:  # the key changed: no retry will sign it
            lead_webhook_failure_record(webhook=webhook, error=str(exc))
            continue
        except requests.RequestException as exc:
            error = redact(str(exc))
            logger.warning("lead webhook %s: %s", webhook.pk, error)
            lead_webhook_failure_record(webhook=webhook, error=error)
            retry = True
            continue
        if status == 429 or status >= 500:
            retry = True
        elif 200 <= status < 300:
            done += 1
    if retry and self.request.retries < self.max_retries:
        raise self.retry(countdown=min(3600, 30 * 2**self.request.retries))
    return done
