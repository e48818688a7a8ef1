"""What every REST endpoint shares: the tenant from the key, JSON bodies read through
``chattonic.core.inputs``, JSON errors (sizes and bad requests included), pagination, and
ids in URLs."""

from __future__ import annotations

from datetime import UTC, datetime, time

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import Http404, JsonResponse
from rest_framework import exceptions, pagination, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import exception_handler as drf_exception_handler

from chattonic.core import inputs
from chattonic.core.errors import ServiceError
from chattonic.core.inputs import KeyConverter
from chattonic.core.parsers import too_large

# The doors whose every answer is JSON, errors included.
JSON_PATHS = ("/api/", "/hooks/")


class KeyField(serializers.IntegerField):
    """An id in a body or a query: a whole number (or ASCII digits) within the keys' range
    (DRF's IntegerField takes any size, which the database then refuses with a 500)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", inputs.MAX_KEY)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return inputs.key(data, field=self.field_name or "id")
        except inputs.InputError as exc:
            raise serializers.ValidationError(exc.reason) from None


class KeyRelatedField(serializers.PrimaryKeyRelatedField):
    """DRF's PrimaryKeyRelatedField, whose id is first a ``KeyField``'s (DRF looks up any
    number, and the database's overflow was a 500)."""

    def to_internal_value(self, data):
        try:
            data = inputs.key(data, field=self.field_name or "id")
        except inputs.InputError:
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


class Router(SimpleRouter):
    """A router whose object URLs take ids only (``KeyConverter``'s digits)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._default_value_pattern = KeyConverter.regex


def error_body(code: str, message: str, fields: dict | None = None, **extra) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}, **extra}}


def _flatten_fields(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested validation detail as ``{"field.sub": ["message", ...]}``."""
    fields: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors" and not prefix:
                name = "non_field_errors"
            fields.update(_flatten_fields(value, name))
    elif isinstance(detail, list) and detail and all(isinstance(v, str) for v in detail):
        fields[prefix or "non_field_errors"] = [str(v) for v in detail]
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            fields.update(_flatten_fields(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        fields[prefix or "non_field_errors"] = [str(detail)]
    return fields


def exception_handler(exc, context):
    """Every API error as ``{"error": {"code", "message", "fields"}}``, in JSON whatever the
    view renders otherwise (a CSV export's error is JSON too)."""
    request = context.get("request")
    if request is not None:
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
    if isinstance(exc, ServiceError):
        return Response(
            error_body(exc.code, exc.message, exc.fields, **exc.extra), status=exc.status
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten_fields(exc.detail)
        names = ", ".join(sorted(fields))
        response.data = error_body("invalid", f"Invalid input: {names}.", fields)
    else:
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        code = codes if isinstance(codes, str) else "error"
        response.data = error_body(code, str(getattr(exc, "detail", exc)))
    return response


class Pagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class TenantScopedMixin:
    """Resolves the tenant once, from the API key, and reads through ``for_tenant``.

    Every child object of a view is fetched through ``get_queryset``, so an object of
    another tenant is a 404 exactly like a missing one.
    """

    @property
    def tenant(self):
        return self.request.auth.tenant

    def get_queryset(self):
        return super().get_queryset().for_tenant(self.tenant)


def json_not_found(request, exception=None):
    """The 404 page: JSON for the API and webhooks, Django's page elsewhere."""
    if request.path.startswith(JSON_PATHS):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def json_bad_request(request, exception=None):
    """The 400 page (Django's refusals before a view answers: a body past
    DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields): JSON naming what is wrong for the API and
    webhooks, 413 for a body too large; Django's page elsewhere."""
    if request.path.startswith(JSON_PATHS):
        if isinstance(exception, RequestDataTooBig):
            error = too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
            return JsonResponse(error_body(error.code, error.message, error.fields), status=413)
        if isinstance(exception, TooManyFieldsSent):
            message = f"At most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields."
            return JsonResponse(
                error_body("too_many_fields", message, {"body": [message]}), status=400
            )
        return JsonResponse(error_body("bad_request", "Bad request."), status=400)
    from django.views.defaults import bad_request

    return bad_request(request, exception)


def json_server_error(request):
    if request.path.startswith(JSON_PATHS):
        return JsonResponse(
            error_body("server_error", "Internal error; it was logged."), status=500
        )
    from django.views.defaults import server_error

    return server_error(request)


# --- Filters of the list endpoints ---------------------------------------------------------


def start_of(value) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time.min, tzinfo=UTC)


class DateOrDateTimeField(serializers.DateTimeField):
    """A date (its midnight, UTC) or a date-time."""

    def to_internal_value(self, value):
        if isinstance(value, str) and len(value) == 10:
            parsed = serializers.DateField().to_internal_value(value)
            return datetime.combine(parsed, time.min, tzinfo=UTC)
        return super().to_internal_value(value)


def filter_params(serializer_class, request) -> dict:
    params = serializer_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params.validated_data
