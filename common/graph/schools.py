"""What SDS schools are called: SIS id -> display name, for the portal's school names.

A full read learns every name from the ``/education/schools`` listing it makes anyway (no extra
request). A real-time read of one user or class learns the names of the object's own education
schools from the ``/schools`` listing in its ``$batch``; only a school named by the classic SDS
attribute alone (not among those) costs one more request, ``/education/schools`` filtered by
its SIS id, so that a real-time job names a school as the full read does.

Failure policy: a school Graph does not know is simply unnamed (the sync calls it by its id);
a failed read raises as every listing does (``common.graph.batch``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from common.graph.batch import Batcher
from common.graph.client import MAX_PAGE_SIZE, GraphClient
from common.graph.schemas import EDUCATION_SCHOOLS, EducationSchool

FIELDS = ("id", "displayName", "externalId")


def school_names(schools: Iterable[EducationSchool]) -> dict[str, str | None]:
    """SIS id (else object id) -> display name of these education schools."""
    return {s.external_id or s.id: s.display_name for s in schools}


def with_classic_school(
    client: GraphClient, known: dict[str, str | None], classic_id: str | None
) -> dict[str, str | None]:
    """``known`` with the name of ``classic_id`` added when it is not among them (one read)."""
    if not classic_id or classic_id in known:
        return known
    found: list[dict[str, Any]] = []
    literal = classic_id.replace("'", "''")  # OData string literal
    batcher = Batcher(client)
    batcher.listing(
        "/education/schools",
        lambda items: found.extend(items or []),
        params={
            "$select": ",".join(FIELDS),
            "$filter": f"externalId eq '{literal}'",
            "$top": MAX_PAGE_SIZE,
        },
        missing_ok=True,
    )
    batcher.run()
    return {**known, **school_names(EDUCATION_SCHOOLS.many(found))}
