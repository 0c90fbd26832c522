"""The whole plan of a preview as CSV (the CLI's ``preview --format csv`` and the admin app's
"Ladda ner CSV"): the classes that will sync, the collisions, the duplicates and every action,
one a row.

Cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``) are
prefixed with ``'``: names and e-mails come from Microsoft 365 and the portal, not from us.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from common.model import Plan

HEADERS = ("section", "kind", "microsoft_id", "portal_id", "name", "detail", "reason")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def value_text(value: Any) -> str:
    """One value in a cell: lists joined by commas, nothing for none, booleans as in JSON
    (true, false), dicts as compact JSON; never a Python repr."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(value_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


def rows(plan: Plan) -> Iterable[Sequence[Any]]:
    for cid, name in plan.classes_in_scope:
        yield ["class", "", cid, "", name, "", "will sync"]
    for c in plan.collisions:
        yield [
            "collision",
            "",
            c.object_id,
            c.portal_id,
            c.display_name,
            c.portal_email or "",
            f"same name and school as {c.microsoft_email} but another e-mail: "
            "a second account would be created",
        ]
    for d in plan.duplicates:
        for duplicate_id in d.duplicate_ids:
            yield [
                "duplicate",
                d.kind,
                d.object_id,
                duplicate_id,
                d.label,
                f"kept={d.kept_id}",
                "same externalId as the portal object kept: deleted once approved",
            ]
    for a in plan.actions:
        changes = "; ".join(f"{k}={value_text(v)}" for k, v in a.changes.items())
        yield ["action", a.kind.value, a.object_id, a.portal_id or "", a.label, changes, a.reason]


def plan_csv(plan: Plan) -> str:
    """The plan as CSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADERS)
    for row in rows(plan):
        writer.writerow([_cell(c) for c in row])
    return buffer.getvalue()
