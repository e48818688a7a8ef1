"""``/hooks/trello/``: Trello's webhook. HEAD answers Trello's check; POST is verified,
then applied."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from chattonic.core.api import error_body
from support import services
from support.trello import sync, webhook

logger = logging.getLogger(__name__)


@csrf_exempt
@require_http_methods(["HEAD", "POST"])
def trello_webhook(request):
    if request.method == "HEAD":
        # Trello checks the callback URL with a HEAD before it creates the webhook.
        return HttpResponse(status=200)
    body = request.body
    try:
        webhook.verify(
            secret=settings.TRELLO_SECRET,
            body=body,
            callback_url=sync.callback_url(),
            header=request.headers.get(webhook.SIGNATURE_HEADER),
        )
    except webhook.Refused as exc:
        logger.warning("trello.webhook refused: %s", exc.code)
        return JsonResponse(error_body(exc.code, exc.message), status=exc.status)
    try:
        action = webhook.parse(body)
    except webhook.Malformed as exc:
        return JsonResponse(error_body("malformed_payload", str(exc)), status=400)
    sync.state_touch_webhook()
    outcome = services.trello_action_apply(action=action) if action is not None else "ignored"
    return JsonResponse({"ok": True, "outcome": outcome})
