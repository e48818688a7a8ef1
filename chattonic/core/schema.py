"""The OpenAPI schema: the error shape on every operation (a postprocessing hook)."""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "description": "A stable machine-readable code."},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "description": "Each invalid field and its messages.",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}

ERROR_RESPONSES = {
    "400": "Invalid input; `fields` names each invalid field.",
    "401": "Missing, malformed, unknown or revoked API key.",
    "403": "The API key lacks the scope this operation needs.",
    "404": "No such object in your tenant.",
    "429": "Too many requests for this API key; see `Retry-After`.",
}


def add_error_responses(result, generator, request, public):
    """Declare the JSON error body on every API operation that can produce it."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_RESPONSES.items():
                if status == "400" and method in {"get", "delete"}:
                    continue
                if status == "404" and "{" not in path:
                    continue
                responses.setdefault(status, {"description": description, "content": error_ref})
    return result
