"""Registering, changing and removing a tenant so that one portal organisation belongs to one
Microsoft 365 tenant, and a removed tenant leaves nothing running.

- A tenant id is a GUID; a domain (``lund.onmicrosoft.com``) is resolved to its tenant's GUID
  through Entra's discovery document, so the same tenant cannot be registered twice.
- A portal URL must pass the URL policy (``common.portal.urls``) and may not be a portal that
  another tenant uses, however it is spelled (compared normalised).
- A disabled tenant gets no writes: runs that write refuse to start (``refuse_disabled``) and
  real-time jobs are dropped as they start (``writable_tenant``).
- ``remove_tenant`` deletes the tenant's Graph subscriptions, drops its queued jobs and pending
  markers, and forgets it; its audit log stays readable for its six months.

Failure policy: a refused registration raises ``NeedsAttention`` (or ``ConfigError`` for
settings) with a sentence naming the conflict, before anything is written. A Graph that cannot
be reached while removing leaves the subscriptions to expire by themselves (the listener then
answers their notifications without queueing anything) and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from common.errors import (
    GraphUnavailable,
    NeedsAttention,
    NotFound,
    SkolsynkError,
    TenantDisabled,
    UnknownTenant,
)
from common.graph.discovery import parse_guid, tenant_id_for_domain
from common.http import Transport
from common.logs import get_logger
from common.portal.urls import check_portal_url, same_portal
from common.state.registry import PortalEnvironment, Tenant
from common.state.runs import RunReport, new_run_id, now_iso
from common.state.subscriptions import SubscriptionStore
from common.state.tenant_work import drop_tenant_work
from common.sync.services import Services

#: checks that a portal environment (its name, and the connection with its URL normalised)
#: answers as a SCIM server with its token before it is stored; runs after the URL policy and
#: the one-tenant-per-portal rule (``None``: those two only)
PortalCheck = Callable[[str, PortalEnvironment], None]

log = get_logger(__name__)

GUID_EXAMPLE = "9188040d-6c67-4c5b-b112-36a304b66dad"


def canonical_tenant_id(services: Services, given: str) -> str:
    """The tenant id for ``given``: a GUID as is (lower case), a domain resolved through Entra."""
    text = given.strip()
    guid = parse_guid(text)
    if guid is not None:
        return guid
    if "." in text and " " not in text:
        transport = Transport(
            services.graph_session,
            service="Microsoft Entra sign-in",
            unavailable=GraphUnavailable,
            policy=services.retry_policy,
        )
        return tenant_id_for_domain(transport, services.config.authority, text)
    raise NeedsAttention(
        f"{text!r} is not a Microsoft 365 tenant id.",
        hint=f"Give the tenant id, a GUID such as {GUID_EXAMPLE}, "
        "or one of the tenant's domains, such as lund.onmicrosoft.com.",
    )


def add_tenant(
    services: Services, tenant: Tenant, *, check_portal: PortalCheck | None = None
) -> Tenant:
    """Register a new tenant under its GUID, after every check; nothing is written if one fails."""
    tenant_id = canonical_tenant_id(services, tenant.id)
    services.registry.refuse_registered(tenant_id, tenant.name)
    checked = _checked_portals(services, replace(tenant, id=tenant_id), check_portal=check_portal)
    return services.registry.add(checked)


def update_tenant(
    services: Services,
    tenant: Tenant,
    *,
    check_portal: PortalCheck | None = None,
    changed: frozenset[str] = frozenset(),
) -> Tenant:
    """Store changed settings; the portals in ``changed`` (environment names) are checked as a
    new one would be (the others were checked when they were set)."""
    checked = _checked_portals(services, tenant, check_portal=check_portal, only=changed)
    return services.registry.save(checked)


@dataclass(frozen=True)
class Removal:
    """What removing a tenant did."""

    tenant: Tenant
    subscriptions_deleted: int
    subscriptions_left: int
    jobs_dropped: int
    #: why subscriptions were left in Graph, when they were
    problem: str = ""


def remove_tenant(services: Services, tenant_ref: str) -> Removal:
    """Delete the tenant's subscriptions in Graph, drop its queued work, forget the tenant."""
    tenant = services.registry.get(tenant_ref)
    store = SubscriptionStore(services.redis, services.config.secret_key)
    records = store.for_tenant(tenant.id)
    deleted = 0
    problem = ""
    graph = services.graph(tenant.id)
    for record in records:
        try:
            graph.delete_subscription(record.id)
            deleted += 1
        except NotFound:
            deleted += 1
        except SkolsynkError as exc:
            problem = str(exc)
        # retired either way: the listener answers its late notifications without queueing
        store.retire(record)
    # the dispatcher must not run what was queued for the tenant
    dropped = drop_tenant_work(services.redis, tenant.id)
    services.links.drop(tenant.id)  # which portal object the sync linked: gone with the tenant
    services.registry.remove(tenant.id)
    return Removal(tenant, deleted, len(records) - deleted, dropped, problem)


def _checked_portals(
    services: Services,
    tenant: Tenant,
    *,
    check_portal: PortalCheck | None,
    only: frozenset[str] | None = None,
) -> Tenant:
    portals = dict(tenant.portals)
    others = [t for t in services.registry.all() if t.id != tenant.id]
    for env, portal in tenant.portals.items():
        if only is not None and env not in only:
            continue
        url = check_portal_url(
            portal.url,
            allow_private=services.config.allow_private_portals,
            what=f"the {env} portal",
        )
        for other in others:
            for other_env, theirs in other.portals.items():
                if same_portal(url, theirs.url):
                    raise NeedsAttention(
                        f"The {env} portal {url} is already the {other_env} portal of tenant "
                        f"{other.name} ({other.id}); one portal organisation belongs to one "
                        "tenant.",
                        hint="Give this school its own organisation in the portal.",
                    )
        checked = replace(portal, url=url)
        if check_portal is not None and not portal.undecryptable:
            check_portal(env, checked)
        portals[env] = checked
    return replace(tenant, portals=portals)


def refuse_disabled(tenant: Tenant) -> None:
    """``TenantDisabled`` for a disabled tenant: a run that writes must not start."""
    if not tenant.enabled:
        raise TenantDisabled(
            f"Tenant {tenant.name} is disabled: nothing is written to its portal.",
            hint=f"Enable it with `skolsynk tenant set {tenant.id} --enable`.",
        )


def writable_tenant(services: Services, tenant_id: str, *, why: str) -> Tenant | RunReport:
    """The tenant of a real-time job, or the report of a job dropped because the tenant is
    disabled or no longer registered (checked as each job starts, so that disabling stops the
    very next one)."""
    try:
        tenant = services.registry.get(tenant_id)
    except UnknownTenant:
        reason = "the tenant is not registered (removed?)"
    else:
        if tenant.enabled:
            return tenant
        reason = "the tenant is disabled"
    log.info("change dropped", extra={"tenant": tenant_id, "reason": reason})
    report = RunReport(new_run_id(), tenant_id, why, now_iso(), outcome="skipped")
    report.message = f"Change dropped: {reason}."
    report.finished_at = report.started_at
    return report
