"""Schemathesis against our OpenAPI schema, in-process (WSGI), with an admin API key: no 5xx
and no response that breaks the schema, on a bounded number of examples per operation."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chattonic.tenancy.services import api_key_create
from stats import services as stats
from tests.conversations.insight import at, conversation_with_messages, staff
from tests.factories import DailyStatFactory, LeadFactory

pytestmark = pytest.mark.django_db
EXAMPLES = 8
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    status_code_conformance,
]


def test_the_api_answers_every_generated_request_within_its_schema(tenant, settings_override):
    user = staff(tenant)
    _, secret = api_key_create(tenant=tenant, name="fuzz", scopes=["admin"], created_by=user)
    conversation = conversation_with_messages(tenant, created_at=at(10))
    LeadFactory(tenant=tenant, contact=conversation.contact, conversation=conversation)
    DailyStatFactory(tenant=tenant, first_response_seconds=[5, 9], csat_counts=[0, 0, 1, 0, 0])
    stats.stats_rebuild(tenant_id=tenant.pk, start=at(10).date(), end=at(10).date())

    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    headers = {"Authorization": f"Bearer {secret}"}
    failures = []
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().path.startswith("/api/v1/")
    ]
    assert len(operations) > 20

    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 (report them all)
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    assert failures == [], "\n\n".join(failures)


@pytest.fixture
def settings_override(settings):
    """A generous rate limit, and the test's database connection kept open across requests
    (as Django's test client does: a real request's end would close it)."""
    from django.core import signals
    from django.db import close_old_connections

    settings.API_RATE_PER_MINUTE = 100000
    settings.ALLOWED_HOSTS = ["*"]
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
