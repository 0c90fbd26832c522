"""What a portal's SCIM server says about itself, for "Testa anslutningen" and for checking a
URL before it is saved: its service provider configuration, resource types and schemas, and a
one-item listing of users and groups.

Failure policy: never raises for what the portal answers; every problem becomes a sentence in
``Probe.problems``. Transport failures arrive as ``PortalUnavailable`` (translated by
``common.http.Transport``) and become a sentence too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests
from flask_babel import gettext as _

from common.errors import PortalUnavailable, TransientError
from common.http import RetryPolicy, Transport

SERVICE_PROVIDER_CONFIG = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
SCHOOL_EXTENSION_HINT = "school"
#: one quick try: a person is waiting for the answer
PROBE_POLICY = RetryPolicy(attempts=1)


@dataclass
class Probe:
    """What the check found."""

    reachable: bool = False
    is_scim: bool = False
    features: dict[str, bool] = field(default_factory=dict)
    max_results: int | None = None
    resource_types: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    users: int | None = None
    groups: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reachable and self.is_scim and not self.problems


def probe(session: requests.Session, url: str, token: str) -> Probe:
    """Ask the SCIM server at ``url`` what it supports, with its bearer ``token``."""
    found = Probe()
    transport = Transport(
        session, service="the portal", unavailable=PortalUnavailable, policy=PROBE_POLICY
    )
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/scim+json"}

    def get(path: str) -> tuple[int, Any]:
        response = transport.request("GET", f"{url}/{path}", headers=headers)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    try:
        status, config = get("ServiceProviderConfig")
    except TransientError:
        found.problems.append(_("Portalen svarar inte på den adressen."))
        return found
    found.reachable = True
    if status in (401, 403):
        found.problems.append(_("Portalen svarar men godtar inte token."))
        return found
    schemas = config.get("schemas", []) if isinstance(config, dict) else []
    if status != 200 or SERVICE_PROVIDER_CONFIG not in schemas:
        found.problems.append(
            _("Adressen svarar, men inte som en SCIM 2.0-server (ingen ServiceProviderConfig).")
        )
        return found
    found.is_scim = True
    for name in ("patch", "filter", "sort", "etag", "bulk", "changePassword"):
        value = config.get(name)
        found.features[name] = bool(isinstance(value, dict) and value.get("supported"))
    limit = (config.get("filter") or {}).get("maxResults")
    found.max_results = limit if isinstance(limit, int) else None
    if not found.features.get("patch"):
        found.problems.append(_("Portalen stöder inte SCIM PATCH, som Skolsynk behöver."))
    try:
        _status, types = get("ResourceTypes")
        for item in (types or {}).get("Resources", []) if isinstance(types, dict) else []:
            found.resource_types.append(str(item.get("name", "")))
            for ext in item.get("schemaExtensions") or []:
                found.extensions.append(str(ext.get("schema", "")))
        for endpoint in ("Users", "Groups"):
            status, listing = get(f"{endpoint}?count=1&startIndex=1")
            total = listing.get("totalResults") if isinstance(listing, dict) else None
            if status == 200 and isinstance(total, int):
                setattr(found, endpoint.lower(), total)
            else:
                found.problems.append(
                    _("Portalen listar inte %(what)s som SCIM föreskriver.", what=endpoint)
                )
    except TransientError:
        found.problems.append(_("Portalen slutade svara mitt i kontrollen."))
    found.extensions = sorted(set(found.extensions))
    return found
