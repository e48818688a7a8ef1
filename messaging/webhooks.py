"""``/hooks/<kind>/<channel id>/``: the messaging platforms' webhooks.

GET answers Meta's subscription handshake (WhatsApp, Messenger). POST is verified by the
channel's connector against the raw body (a refused request gets a JSON 401/403 and writes
nothing), parsed into neutral events, and stored by :func:`messaging.services.webhook_receive`
before the 200 goes back; the bot answers in a Celery task. The API channel authenticates the
tenant's API key instead of a platform signature.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.views import APIView

from bots.regions import region_refusal_for
from chattonic.core.api import error_body
from chattonic.core.credentials import CredentialsUnreadable
from chattonic.core.parsers import too_large
from chattonic.core.public_urls import public_base_url
from chattonic.tenancy.authentication import ApiKeyAuthentication
from messaging import services as messaging
from messaging.connectors import (
    CONNECTORS,
    MalformedPayload,
    VerificationFailed,
    WebhookRequest,
    get_connector,
    public_url,
)
from messaging.models import Channel

logger = logging.getLogger(__name__)

TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


@extend_schema(exclude=True)  # the platforms' contracts, documented in docs/channels.md
class ChannelWebhookView(APIView):
    """One view for every platform; the connector of the channel's kind does the rest."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    parser_classes: list = []  # the raw body is what the signature covers

    def _channel(self, kind: str, channel_id: int) -> Channel | None:
        if kind not in CONNECTORS:
            return None
        return messaging.channel_for_webhook(kind, channel_id)

    def _refusal(self, channel: Channel | None) -> JsonResponse | None:
        """404 for an unknown channel; 421 naming the right URL for another region's bot."""
        if channel is None:
            return _error(404, "not_found", "No such channel.")
        refusal = region_refusal_for(channel.bot_region)
        if refusal is not None:
            status = refusal.pop("status")
            return JsonResponse(error_body(**refusal), status=status)
        return None

    def _webhook_request(self, request) -> WebhookRequest:
        django_request = request._request
        return WebhookRequest(
            method=django_request.method,
            url=public_url(public_base_url(django_request), django_request.get_full_path()),
            headers=dict(django_request.headers),
            body=django_request.body,
            query={key: django_request.GET.get(key) for key in django_request.GET},
        )

    def get(self, request, kind: str, channel_id: int):
        channel = self._channel(kind, channel_id)
        refused = self._refusal(channel)
        if refused is not None:
            return refused
        try:
            challenge = get_connector(kind).handshake(
                self._webhook_request(request), messaging.channel_credentials(channel)
            )
        except VerificationFailed as exc:
            logger.warning("channel %s: handshake refused (%s)", channel.pk, exc.code)
            return _error(exc.status, exc.code, exc.message)
        except CredentialsUnreadable as exc:
            return _error(403, "not_configured", str(exc))
        if challenge is None:
            return _error(405, "method_not_allowed", "This platform sends POST requests only.")
        return HttpResponse(challenge, content_type="text/plain")

    def post(self, request, kind: str, channel_id: int):
        channel = self._channel(kind, channel_id)
        refused = self._refusal(channel)
        if refused is not None:
            return refused
        connector = get_connector(kind)
        try:
            webhook = self._webhook_request(request)
        except RequestDataTooBig:
            error = too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
            return JsonResponse(error_body(error.code, error.message, error.fields), status=413)
        try:
            if kind == "api":
                refused = self._api_key_refusal(request, channel)
                if refused is not None:
                    return refused
            connector.verify(webhook, messaging.channel_credentials(channel))
        except VerificationFailed as exc:
            logger.warning("channel %s: webhook refused (%s)", channel.pk, exc.code)
            return _error(exc.status, exc.code, exc.message)
        except CredentialsUnreadable as exc:
            return _error(403, "not_configured", str(exc))
        try:
            parsed = connector.parse(webhook)
        except MalformedPayload as exc:
            return JsonResponse(
                error_body(exc.code, exc.message, {exc.field: [exc.message]}), status=400
            )
        refused = [refusal.as_dict() for refusal in parsed.refused]
        for refusal in parsed.refused:
            logger.warning(
                "channel %s: event %s refused (%s: %s)",
                channel.pk,
                refusal.event,
                refusal.field,
                refusal.message,
            )
        if refused and not parsed.messages and not parsed.statuses:
            # Nothing of the request can be taken: a 400 naming what is wrong, nothing written.
            first = parsed.refused[0]
            fields = {r.field: [r.message] for r in parsed.refused}
            body = error_body("malformed_payload", first.message, fields, refused=refused)
            return JsonResponse(body, status=400)
        # The events that can be taken are, even when others of the batch were refused.
        outcome = messaging.webhook_receive(channel=channel, parsed=parsed)
        if kind == "twilio":
            # Twilio reads the answer as TwiML: an empty <Response> sends nothing back itself.
            return HttpResponse(TWIML_EMPTY, content_type="text/xml")
        return JsonResponse(
            {
                "ok": True,
                "received": outcome.received,
                "duplicates": outcome.duplicates,
                "statuses": outcome.statuses,
                "refused": refused,
            }
        )

    def _api_key_refusal(self, request, channel: Channel) -> JsonResponse | None:
        """The API channel's door: a tenant API key with the write scope, of the channel's
        tenant (another tenant's channel looks missing)."""
        try:
            authenticated = ApiKeyAuthentication().authenticate(request)
        except exceptions.AuthenticationFailed as exc:
            return _error(401, str(exc.get_codes()), str(exc.detail))
        if authenticated is None:
            return _error(401, "not_authenticated", "Send Authorization: Bearer <api key>.")
        api_key = authenticated[1]
        if api_key.tenant_id != channel.tenant_id:
            return _error(404, "not_found", "No such channel.")
        if not api_key.has_scope("write"):
            return _error(403, "permission_denied", "The API key needs the write scope.")
        return None


channel_webhook = ChannelWebhookView.as_view()
