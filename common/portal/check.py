"""The "test connection" of a portal: what one SCIM server supports and the mapping used there.

Owns ``check_portal`` (reads discovery, tries each filter form and paging with reads only) and
``PortalCheck``, its result as data for a table or JSON. Nothing is ever written to the server.

Failure policy: a server that cannot be used raises ``PortalCheckFailed`` with one sentence:
unreachable, our token refused (``PortalAuthError``), not a SCIM server (an HTML page, not JSON,
no ``/Users``), or no ``/Schemas`` (the sync would have to guess every attribute).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import (
    NeedsAttention,
    NotFound,
    PortalAuthError,
    PortalRequestError,
    TransientError,
)
from common.portal.client import ScimPortal
from common.portal.discovery import Capabilities, ResourceKind
from common.portal.filters import filter_value
from common.portal.mapping import AttributeMapping


class PortalCheckFailed(NeedsAttention):
    """The server at the URL cannot serve as a portal; the message says why."""

    hint = "Check the SCIM base URL and the token with the portal's vendor."


class PortalTokenRefused(PortalCheckFailed):
    """The server answered, and refused the token."""

    hint = "Ask the portal's vendor for a valid token for this SCIM base URL."


@dataclass(frozen=True)
class PortalCheck:
    """What ``check_portal`` found."""

    url: str
    capabilities: Capabilities
    mapping: AttributeMapping
    #: filter form -> whether the server answered it
    filters: dict[str, bool]
    #: whether ``userName eq`` ignores letter case (``None``: no user to try it with)
    filters_ignore_case: bool | None
    #: "honoured", "ignored" or "not tried (fewer than 2 users)"
    paging: str
    users: int | None

    def to_dict(self) -> dict[str, Any]:
        caps = self.capabilities
        return {
            "url": self.url,
            "discovery": dict(caps.endpoints),
            "resource_types": [_kind(caps.users), _kind(caps.groups)],
            "patch": caps.patch,
            "etag": caps.etag,
            "bulk": caps.bulk,
            "sort": caps.sort,
            "filter": {"supported": caps.filter_supported, "max_results": caps.max_results},
            "filters": self.filters,
            "filters_ignore_case": self.filters_ignore_case,
            "paging": self.paging,
            "users": self.users,
            "mapping": dict(self.mapping.table()),
            "not_sent": list(self.mapping.notes),
            "notes": list(caps.notes),
        }


def _kind(kind: ResourceKind) -> dict[str, Any]:
    return {"endpoint": kind.endpoint, "schema": kind.schema, "extensions": list(kind.extensions)}


def _answers(portal: ScimPortal, query: str) -> bool:
    try:
        portal.read_page("Users", filter=query, count=1)
    except PortalRequestError:
        return False
    return True


def check_portal(portal: ScimPortal) -> PortalCheck:
    """Check the server behind ``portal`` with reads only; see the module docstring."""
    url = portal.base_url
    try:
        page = portal.read_page("Users", count=2)
    except PortalAuthError as exc:
        raise PortalTokenRefused(f"The SCIM server at {url} refused the token: {exc}.") from exc
    except TransientError as exc:
        raise PortalCheckFailed(f"The portal at {url} could not be reached: {exc}.") from exc
    except (PortalRequestError, NotFound) as exc:
        if exc.status == 404:
            raise PortalCheckFailed(
                f"{url} has no SCIM /Users endpoint (404): is it the SCIM base URL?"
            ) from exc
        raise PortalCheckFailed(f"{url} does not answer as a SCIM server: {exc}.") from exc
    capabilities = portal.capabilities(refresh=True)
    if not capabilities.endpoints.get("Schemas"):
        raise PortalCheckFailed(
            f"The SCIM server at {url} has no /Schemas: it does not say which attributes it "
            f"holds (RFC 7644 §4), so Skolsynk cannot tell where to write them."
        )
    sample = page.get("Resources") or []
    name = str(sample[0].get("userName") or "") if sample else ""
    probe = filter_value(name or "nobody@example.invalid")
    filters = {
        'externalId eq "x"': _answers(portal, 'externalId eq "skolsynk-check"'),
        'userName eq "x"': _answers(portal, f"userName eq {probe}"),
        'emails[value eq "x"]': _answers(portal, f"emails[value eq {probe}]"),
        'emails.value eq "x"': _answers(portal, f"emails.value eq {probe}"),
        "or chains": _answers(portal, f'externalId eq "skolsynk-check" or userName eq {probe}'),
    }
    ignores_case: bool | None = None
    if name and name.swapcase() != name:
        found = portal.read_page("Users", filter=f"userName eq {filter_value(name.swapcase())}")
        ignores_case = bool(found.get("Resources"))
    total = page.get("totalResults")
    users = total if isinstance(total, int) else None
    paging = "not tried (fewer than 2 users)"
    if len(sample) >= 2 or (users or 0) >= 2:
        first = portal.read_page("Users", count=1)
        second = portal.read_page("Users", start=2, count=1)
        ids = [
            [r.get("id") for r in p.get("Resources") or [] if isinstance(r, dict)]
            for p in (first, second)
        ]
        paging = "honoured" if len(ids[0]) == 1 and ids[0] != ids[1] else "ignored"
    return PortalCheck(url, capabilities, portal.mapping(), filters, ignores_case, paging, users)


def render(check: PortalCheck) -> str:
    """The check as a table for a person."""
    data = check.to_dict()
    yes = {True: "yes", False: "no", None: "-"}
    lines = [f"SCIM server {check.url}"]
    lines.append(
        "  discovery:   " + ", ".join(f"/{k} {yes[v]}" for k, v in data["discovery"].items())
    )
    for kind in data["resource_types"]:
        extensions = ", ".join(kind["extensions"]) or "none"
        lines.append(f"  {kind['endpoint']:<12} {kind['schema']} (extensions: {extensions})")
    filt = data["filter"]
    lines.append(
        f"  PATCH {yes[data['patch']]}, ETags {yes[data['etag']]}, Bulk {yes[data['bulk']]}, "
        f"sorting {yes[data['sort']]}, filters {yes[filt['supported']]} "
        f"(at most {filt['max_results'] or 'unstated'} per page)"
    )
    lines.append("  filter forms that work:")
    lines += [f"    {form:<24} {yes[ok]}" for form, ok in data["filters"].items()]
    lines.append(f"  userName eq ignores letter case: {yes[data['filters_ignore_case']]}")
    lines.append(f"  paging (startIndex/count): {data['paging']}")
    lines.append("Mapping Skolsynk uses here:")
    lines += [f"  {field:<18} -> {where}" for field, where in data["mapping"].items()]
    lines += [f"  note: {n}" for n in data["not_sent"] + data["notes"]]
    return "\n".join(lines)
