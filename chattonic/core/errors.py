"""Errors that services raise and every door turns into its own shape.

A REST view answers ``{"error": {"code", "message", "fields"}}`` with ``status``; a
socket sends an error frame with the code and message; the dashboard shows the message.
"""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict[str, list[str]] | None = None,
        status: int | None = None,
        extra: dict | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.fields = fields or {}
        self.extra = extra or {}
        if status is not None:
            self.status = status

    @classmethod
    def for_field(cls, field: str, message: str, **kwargs) -> ServiceError:
        return cls(message, fields={field: [message]}, **kwargs)


class ValidationFailed(ServiceError):
    status = 400
    code = "invalid"


class NotFound(ServiceError):
    """Missing and not yours look the same."""

    status = 404
    code = "not_found"


class PermissionDenied(ServiceError):
    status = 403
    code = "permission_denied"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class WrongRegion(ServiceError):
    """The object lives in another region's deployment (HTTP 421 Misdirected Request)."""

    status = 421
    code = "wrong_region"
