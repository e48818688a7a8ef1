"""421 for a request of another region, from its identifiers alone, before any lookup."""

from __future__ import annotations

from django.http import JsonResponse
from django.urls import Resolver404, resolve

from chattonic.core.api import error_body
from chattonic.regions import (
    Region,
    elsewhere,
    refusal,
    region_of_api_key,
    region_of_id,
    region_of_token,
)

# The URL parameters that carry a region-addressed identifier, and how it is read: database
# ids (the API's objects, a webhook's channel) or prefixed strings (widget keys, invitation
# links). Parameters of other names (the dashboard's object_id) are this deployment's own.
ID_PARAMETERS = ("pk", "bot_pk", "channel_id")
TOKEN_PARAMETERS = ("public_key", "token")


def request_region_elsewhere(request) -> Region | None:
    """The other region that the request's API key or URL names, or None."""
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme == "Bearer":
        region = elsewhere(region_of_api_key(token.strip()))
        if region is not None:
            return region
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    for name, value in match.kwargs.items():
        if name in ID_PARAMETERS:
            number = value if isinstance(value, int) else _digits(value)
            region = elsewhere(region_of_id(number)) if number is not None else None
        elif name in TOKEN_PARAMETERS and isinstance(value, str):
            region = elsewhere(region_of_token(value))
        else:
            continue
        if region is not None:
            return region
    return None


def _digits(value) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def wrong_region_response(region: Region) -> JsonResponse:
    answer = refusal(region)
    status = answer.pop("status")
    response = JsonResponse(error_body(**answer), status=status)
    # The widget reads it from the tenant's page (another origin): it names nothing but a
    # public URL.
    response["Access-Control-Allow-Origin"] = "*"
    return response


class RegionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        region = request_region_elsewhere(request)
        if region is not None:
            return wrong_region_response(region)
        return self.get_response(request)
