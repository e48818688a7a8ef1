"""Migration 0008: lead webhooks' signing secrets, stored in plain text before, are encrypted;
backwards, they come out in plain text again."""

from __future__ import annotations

import pytest

from chattonic.core.credentials import decrypt_secret
from leads.models import LeadWebhook
from leads.services import lead_webhook_signing_secret
from tests.factories import TenantFactory
from tests.migrations import migrate

BEFORE = [("conversations", "0007_message_tenant_key_unchecked")]
AFTER = [("conversations", "0008_leadwebhook_secret_encrypted")]
PLAIN = "an-old-plain-secret-0123456789abcdef"


@pytest.mark.django_db(transaction=True)
def test_the_stored_secrets_are_encrypted_and_still_sign():
    tenant = TenantFactory()
    try:
        old_apps = migrate(BEFORE)
        OldLeadWebhook = old_apps.get_model("conversations", "LeadWebhook")
        OldLeadWebhook.objects.create(
            tenant_id=tenant.pk, url="https://crm.example.com/leads", signing_secret=PLAIN
        )
        migrate(AFTER)
        hook = LeadWebhook.objects.get()
        assert PLAIN not in hook.signing_secret_encrypted
        assert lead_webhook_signing_secret(hook) == PLAIN  # deliveries sign as before

        old_apps = migrate(BEFORE)  # and back
        assert old_apps.get_model("conversations", "LeadWebhook").objects.get().signing_secret == (
            PLAIN
        )
    finally:
        migrate()  # every app's newest
    assert decrypt_secret(LeadWebhook.objects.get().signing_secret_encrypted) == PLAIN
