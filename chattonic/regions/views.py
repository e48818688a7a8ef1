"""``/regions/…``: the doors the regions' deployments call each other through (signed)."""

from __future__ import annotations

import json

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from chattonic.core.api import error_body
from chattonic.core.errors import ServiceError
from chattonic.regions import here
from chattonic.regions.exchange import identity_export, request_verify, signed_response_headers


def signed_json(request, payload: dict, status: int = 200) -> HttpResponse:
    """A JSON answer signed for the request it answers."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    response = HttpResponse(body, status=status, content_type="application/json")
    for name, value in signed_response_headers(request, body).items():
        response[name] = value
    return response


def signed_door(view):
    """A door of the exchange: the request's signature checked first (403 JSON otherwise),
    every answer signed, a service's refusal answered as JSON with its status."""

    @csrf_exempt
    def door(request, *args, **kwargs):
        try:
            source = request_verify(request)
        except ServiceError as exc:
            return JsonResponse(error_body(exc.code, exc.message), status=exc.status)
        try:
            return signed_json(request, view(request, source, *args, **kwargs))
        except ServiceError as exc:
            return signed_json(
                request, error_body(exc.code, exc.message, exc.fields, **exc.extra), exc.status
            )

    return door


@require_GET
@signed_door
def identity(request, source):
    """This deployment's identity rows, for another region's deployment to copy."""
    return identity_export()


@require_GET
def widget_region(request, public_key: str):
    """Where a widget key is served. Another region's key never gets here: the middleware
    answers 421 with that region's URL, which the widget follows (static/chattonic/widget.js)."""
    region = here()
    response = JsonResponse({"region": region.name, "url": region.url})
    response["Access-Control-Allow-Origin"] = "*"
    return response
