""" "Testa anslutningen" and the check before a portal address is saved: ``check_portal`` of
``common.portal.check`` (what ``skolsynk portal check`` runs), read for a page.

Failure policy: never raises for what the portal answers; every problem becomes a sentence in
``Probe.problems`` (Swedish first, the check's own sentence after it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import requests
from flask_babel import gettext as _

from common.errors import PortalUnavailable, TransientError
from common.http import RetryPolicy, Transport
from common.portal.check import PortalCheck, PortalCheckFailed, PortalTokenRefused, check_portal
from common.portal.client import ScimPortal

#: one quick try: a person is waiting for the answer
PROBE_POLICY = RetryPolicy(attempts=1)


@dataclass
class Probe:
    """What the check found, as the portal page shows it."""

    reachable: bool = False
    is_scim: bool = False
    features: dict[str, bool] = field(default_factory=dict)
    max_results: int | None = None
    resource_types: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    filters: dict[str, bool] = field(default_factory=dict)
    paging: str = ""
    mapping: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    users: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reachable and self.is_scim and not self.problems


def _found(check: PortalCheck) -> Probe:
    caps = check.capabilities
    found = Probe(reachable=True, is_scim=True)
    found.features = {
        "patch": caps.patch,
        "filter": caps.filter_supported,
        "sort": caps.sort,
        "etag": caps.etag,
        "bulk": caps.bulk,
    }
    found.max_results = caps.max_results
    found.resource_types = [kind.endpoint for kind in (caps.users, caps.groups)]
    found.extensions = sorted({e for kind in (caps.users, caps.groups) for e in kind.extensions})
    found.filters = dict(check.filters)
    paging = {
        "honoured": _("fungerar"),
        "ignored": _("portalen bortser från den"),
        "not tried (fewer than 2 users)": _("inte prövad (färre än två användare)"),
    }
    found.paging = str(paging.get(check.paging, check.paging))
    found.mapping = list(check.mapping.table())
    found.notes = [*caps.notes, *check.mapping.notes]
    found.users = check.users
    if not caps.patch:
        found.problems.append(_("Portalen stöder inte SCIM PATCH, som Skolsynk behöver."))
    return found


def probe(session: requests.Session, url: str, token: str) -> Probe:
    """Check the SCIM server at ``url`` with its bearer ``token``, with reads only."""
    transport = Transport(
        session, service="the portal", unavailable=PortalUnavailable, policy=PROBE_POLICY
    )
    try:
        return _found(check_portal(ScimPortal(transport, url, token)))
    except PortalTokenRefused:
        return Probe(reachable=True, problems=[_("Portalen svarar men godtar inte token.")])
    except PortalCheckFailed as exc:
        if isinstance(exc.__cause__, TransientError):
            return Probe(problems=[_("Portalen svarar inte på den adressen.")])
        return Probe(
            reachable=True,
            problems=[_("Adressen svarar, men inte som en SCIM 2.0-server."), str(exc)],
        )
    except TransientError:
        return Probe(problems=[_("Portalen slutade svara mitt i kontrollen.")])
