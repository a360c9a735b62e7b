"""One error hierarchy, mapped to Kubernetes ``Status`` objects.

Every failure a client can see is a ``StatusError``: the API turns it into a ``Status`` body with the
HTTP code, ``reason`` and ``details`` upstream uses, so kubectl prints it the way it prints
kube-apiserver's. The store returns these as values from ``apply`` (apply never raises); everything
else raises them. Third-party errors are translated where they are caught, chained with ``from``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class StatusCause:
    field: str
    reason: str
    message: str


class StatusError(Exception):
    """Base: an error with an HTTP code and a Kubernetes ``reason``."""

    code: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        kind: str = "",
        group: str = "",
        name: str = "",
        causes: tuple[StatusCause, ...] = (),
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.group = group
        self.name = name
        self.causes = causes
        self.retry_after = retry_after

    def to_status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [
                {"reason": c.reason, "message": c.message, "field": c.field} for c in self.causes
            ]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            status["details"] = details
        return status


class BadRequest(StatusError):
    code = 400
    reason = "BadRequest"


class Unauthorized(StatusError):
    code = 401
    reason = "Unauthorized"


class Forbidden(StatusError):
    code = 403
    reason = "Forbidden"


class NotFound(StatusError):
    code = 404
    reason = "NotFound"


class MethodNotAllowed(StatusError):
    code = 405
    reason = "MethodNotAllowed"


class NotAcceptable(StatusError):
    code = 406
    reason = "NotAcceptable"


class AlreadyExists(StatusError):
    code = 409
    reason = "AlreadyExists"


class Conflict(StatusError):
    code = 409
    reason = "Conflict"


class Fenced(Conflict):
    """A leader-only write carried a leader epoch older than the current one: its sender no longer leads."""


class Gone(StatusError):
    code = 410
    reason = "Expired"


class RequestEntityTooLarge(StatusError):
    code = 413
    reason = "RequestEntityTooLarge"


class UnsupportedMediaType(StatusError):
    code = 415
    reason = "UnsupportedMediaType"


class Invalid(StatusError):
    code = 422
    reason = "Invalid"


class TooManyRequests(StatusError):
    code = 429
    reason = "TooManyRequests"


class InternalError(StatusError):
    code = 500
    reason = "InternalError"


class ServiceUnavailable(StatusError):
    code = 503
    reason = "ServiceUnavailable"


class Timeout(StatusError):
    code = 504
    reason = "Timeout"


def qualified_kind(resource: str, group: str) -> str:
    """Upstream's ``<resource>.<group>`` (or bare resource for the core group) used in messages."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> NotFound:
    return NotFound(f'{qualified_kind(resource, group)} "{name}" not found', kind=resource, group=group, name=name)


def already_exists(resource: str, group: str, name: str) -> AlreadyExists:
    return AlreadyExists(
        f'{qualified_kind(resource, group)} "{name}" already exists', kind=resource, group=group, name=name
    )


def conflict(resource: str, group: str, name: str, detail: str) -> Conflict:
    return Conflict(
        f'Operation cannot be fulfilled on {qualified_kind(resource, group)} "{name}": {detail}',
        kind=resource,
        group=group,
        name=name,
    )


def invalid(kind: str, group: str, name: str, causes: list[StatusCause]) -> Invalid:
    summary = ", ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    if len(causes) > 1:
        summary = f"[{summary}]"
    return Invalid(
        f'{kind}{"." + group if group else ""} "{name}" is invalid: {summary}',
        kind=kind,
        group=group,
        name=name,
        causes=tuple(causes),
    )
