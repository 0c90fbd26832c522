"""Before a command reads or writes a tenant's portal: is its URL a SCIM base URL that answers?

One request, no retries, so that a wrong or unreachable URL is said at once (naming the URL and
what was expected) instead of after a minute of retries or as "not found while listing users".

Failure policy: raises ``NeedsAttention`` (malformed URL, not a SCIM base URL),
``PortalAuthError`` (token refused) or ``PortalUnavailable`` (connection refused, timeout, 5xx);
any other answer lets the command go on and meet the portal as it is.
"""

from __future__ import annotations

from common.errors import NeedsAttention, PortalAuthError, PortalUnavailable
from common.http import RetryPolicy, Transport
from common.portal.urls import check_portal_url
from common.state.registry import Tenant
from common.sync.services import Services
from skolsynk.output import SCIM_BASE_URL_EXAMPLE, portal_url_problem

#: one attempt: a person is waiting, and the command's own run retries as usual afterwards
PROBE_POLICY = RetryPolicy(attempts=1)


def check_portal(services: Services, tenant: Tenant) -> None:
    """Raise a sentence naming the URL if the tenant's current portal cannot be used."""
    portal = tenant.portal()
    where = f"the {tenant.environment} portal at {portal.url}"
    change = f"Change it with `skolsynk tenant set {tenant.id} --{tenant.environment}-portal URL`."
    problem = portal_url_problem(portal.url)
    if problem:
        raise NeedsAttention(problem, hint=change)
    # the URL policy before anything is sent: a token never goes to a refused address
    check_portal_url(
        portal.url,
        allow_private=services.config.allow_private_portals,
        what=f"the {tenant.environment} portal of {tenant.name}",
    )
    transport = Transport(
        services.portal_session, service=where, unavailable=PortalUnavailable, policy=PROBE_POLICY
    )
    response = transport.request(
        "GET",
        f"{portal.url}/ServiceProviderConfig",
        headers={
            "Authorization": f"Bearer {portal.token.reveal()}",
            "Accept": "application/scim+json, application/json",
        },
    )
    status = response.status_code
    response.close()
    if status in (401, 403):
        raise PortalAuthError(f"{where} refused the token ({status})")
    if status == 404:
        raise NeedsAttention(
            f"{portal.url} is not a SCIM base URL: {where} has no /ServiceProviderConfig (404). "
            f"Expected a SCIM base URL such as {SCIM_BASE_URL_EXAMPLE}.",
            hint=change,
        )
