"""The REST API's body parser: JSON through the door's cleaning step (chattonic.core.inputs).

Its own module: DRF reads DEFAULT_PARSER_CLASSES while its views load, so the parser may not
import anything that imports those views.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import parsers

from chattonic.core import inputs
from chattonic.core.errors import ServiceError


def too_large(limit: int | None) -> ServiceError:
    """The 413 of a body past ``limit`` bytes, naming the body."""
    message = f"The body is larger than {limit} bytes." if limit else "The body is too large."
    return ServiceError(message, code="too_large", status=413, fields={"body": [message]})


class JsonParser(parsers.BaseParser):
    """JSON bodies of at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes (else 413), read with orjson
    (no NaN, no lone surrogates), at most ``inputs.MAX_DEPTH`` deep, with no NUL in any
    string; a refusal is a 400 naming the field.

    Not a subclass of DRF's JSONParser, for which DRF reads ``request.body`` itself (Django's
    size check then raises before any parser, and answers an HTML 400)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = (stream.read(limit + 1) if limit is not None else stream.read()) if stream else b""
        if limit is not None and len(raw) > limit:
            raise too_large(limit)
        value = inputs.loads(raw)
        inputs.nul_free(value)
        return value
