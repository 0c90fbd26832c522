"""Errors the portal answers with: SCIM error bodies (RFC 7644 §3.12) and portal API errors."""

from __future__ import annotations

from typing import Any

from common.portal.scim import ERROR


class ScimError(Exception):
    """A SCIM error answer: HTTP status, optional ``scimType`` keyword and a sentence."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [ERROR], "status": str(self.status)}
        if self.scim_type:
            body["scimType"] = self.scim_type
        body["detail"] = self.detail
        return body


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


def invalid_syntax(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidSyntax")


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


def invalid_path(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidPath")


def no_target(detail: str) -> ScimError:
    return ScimError(400, detail, "noTarget")


def mutability(detail: str) -> ScimError:
    return ScimError(400, detail, "mutability")


def uniqueness(detail: str) -> ScimError:
    return ScimError(409, detail, "uniqueness")


def not_found(detail: str) -> ScimError:
    return ScimError(404, detail)


def precondition_failed(detail: str) -> ScimError:
    return ScimError(412, detail)


class ApiError(Exception):
    """An answer of the portal's own JSON API (``/api/``): status and a sentence for a person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
