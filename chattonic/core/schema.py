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
    "421": "The API key or an id in the path is of another region: `url` names that "
    "region's deployment (docs/regions.md).",
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
                if status == "400" and method in {"get", "delete"} and not _filtered(operation):
                    continue  # a GET with query parameters (filters, ranges) may refuse them
                if status == "404" and "{" not in path and not _paginated(operation):
                    continue  # a paginated list answers 404 for a page past its end
                responses.setdefault(status, {"description": description, "content": error_ref})
    return result


def _paginated(operation: dict) -> bool:
    return any(p.get("name") == "page" for p in operation.get("parameters", []))


def _filtered(operation: dict) -> bool:
    return any(
        p.get("in") == "query" and p.get("name") not in ("page", "page_size")
        for p in operation.get("parameters", [])
    )
