"""Modes of the reference portal that mimic what independent SCIM servers do as they ship.

Each mode is a per-organisation (or global) knob, on at 1 and off at 0 (``sandbox.portal.knobs``):

- ``no_school_extension``: the school extension is not declared in ``/Schemas`` and
  ``/ResourceTypes``; a write that uses it is refused (``invalidSyntax``/``invalidPath``), as
  RFC 7643 §3 lets a server refuse undeclared schemas;
- ``eq_only_filters``: only ``attr eq "value"`` filters (no ``or``/``and``, no brackets);
  anything else is ``invalidFilter``;
- ``lowercase_emails``: e-mail values are stored in lower case (RFC 7643 §4.1.2 SHOULD);
- ``case_sensitive_filters``: ``eq`` and the other string operators compare letter case even
  where ``caseExact`` is false;
- ``ignore_paging``: ``startIndex`` and ``count`` are ignored: every listing answers its first
  ``MAX_RESULTS`` resources.
"""

from __future__ import annotations

from typing import Any

from common.portal.scim import SCHOOL_GROUP_SCHEMA, SCHOOL_USER_SCHEMA
from sandbox.portal.errors import invalid_filter, invalid_path, invalid_syntax
from sandbox.portal.filter_syntax import Compare, Node

MODES = (
    "no_school_extension",
    "eq_only_filters",
    "lowercase_emails",
    "case_sensitive_filters",
    "ignore_paging",
)
_SCHOOL = (SCHOOL_USER_SCHEMA.lower(), SCHOOL_GROUP_SCHEMA.lower())


def active(knobs: dict[str, float]) -> frozenset[str]:
    """The modes switched on in these (effective) knobs."""
    return frozenset(m for m in MODES if knobs.get(m, 0.0) >= 0.5)


def discovery(entries: list[dict[str, Any]], modes: frozenset[str]) -> list[dict[str, Any]]:
    """Schemas and resource types as the mode declares them."""
    if "no_school_extension" not in modes:
        return entries
    kept = [e for e in entries if str(e.get("id", "")).lower() not in _SCHOOL]
    for entry in kept:
        if "schemaExtensions" in entry:
            entry["schemaExtensions"] = [
                x for x in entry["schemaExtensions"] if str(x["schema"]).lower() not in _SCHOOL
            ]
    return kept


def check_filter(node: Node | None, modes: frozenset[str]) -> None:
    """``invalidFilter`` for a filter this mode does not take."""
    if node is None or "eq_only_filters" not in modes:
        return
    if not (isinstance(node, Compare) and node.op == "eq" and isinstance(node.value, str)):
        raise invalid_filter('this server takes only filters of the form attr eq "value"')


def check_resource(body: Any, modes: frozenset[str]) -> None:
    """Refuse a resource that uses an undeclared extension."""
    if "no_school_extension" not in modes or not isinstance(body, dict):
        return
    schemas = [str(s).lower() for s in body.get("schemas") or []]
    if any(s in _SCHOOL for s in schemas) or any(str(k).lower() in _SCHOOL for k in body):
        raise invalid_syntax("the resource uses a schema this server does not declare")


def check_patch(body: Any, modes: frozenset[str]) -> None:
    """Refuse a PATCH whose paths or values use an undeclared extension."""
    if "no_school_extension" not in modes or not isinstance(body, dict):
        return
    for operation in body.get("Operations") or []:
        if not isinstance(operation, dict):
            continue
        path = str(operation.get("path") or "").lower()
        if path.startswith(_SCHOOL):
            raise invalid_path(f"no such attribute: {operation.get('path')}")
        check_resource(operation.get("value"), modes)


def canonical(doc: dict[str, Any], modes: frozenset[str]) -> dict[str, Any]:
    """The resource as this mode stores it (e-mails in lower case)."""
    if "lowercase_emails" in modes:
        emails = doc.get("emails")
        if isinstance(emails, list):
            for email in emails:
                if isinstance(email, dict) and isinstance(email.get("value"), str):
                    email["value"] = email["value"].lower()
    return doc
