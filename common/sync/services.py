"""Builds the long-lived pieces of a process from the configuration: Redis, sessions, clients.

One ``Services`` per process (the CLI, each worker, the demo); it holds no per-request state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from common.config import Config
from common.errors import GraphUnavailable, PortalUnavailable
from common.graph.auth import MsalTokenProvider
from common.graph.client import GraphClient
from common.http import RetryPolicy, Transport, VerifyingSession, build_session
from common.portal.client import ScimPortal
from common.portal.mapping import mapping_overrides
from common.portal.urls import check_portal_url
from common.state.audit import AuditLog
from common.state.links import Links
from common.state.portal_memory import PortalMemory
from common.state.registry import Tenant, TenantRegistry
from common.state.runs import RunStore
from common.state.telemetry import Telemetry
from common.sync.safety import SafetyState

REDIS_SOCKET_TIMEOUT_SECONDS = 10.0


@dataclass
class Services:
    """Everything a run needs, built once per process."""

    config: Config
    redis: redis.Redis
    registry: TenantRegistry
    audit: AuditLog
    safety: SafetyState
    runs: RunStore
    graph_session: VerifyingSession
    portal_session: VerifyingSession
    tokens: MsalTokenProvider
    telemetry: Telemetry
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def links(self) -> Links:
        """Which portal object the sync linked to each Microsoft object (Redis, per tenant)."""
        return Links(self.redis)

    def graph(self, tenant_id: str) -> GraphClient:
        transport = Transport(
            self.graph_session,
            service="Microsoft Graph",
            unavailable=GraphUnavailable,
            policy=self.retry_policy,
        )
        return GraphClient(transport, self.tokens, self.config.graph_url, tenant_id)

    def portal(self, tenant: Tenant) -> ScimPortal:
        """The tenant's current portal; its URL is held to the URL policy on every use, so a
        token is never sent where the policy forbids, whenever the URL was stored."""
        environment = tenant.portal()
        check_portal_url(
            environment.url,
            allow_private=self.config.allow_private_portals,
            what=f"the {tenant.environment} portal of {tenant.name}",
        )
        transport = Transport(
            self.portal_session,
            service=f"the {tenant.environment} portal",
            unavailable=PortalUnavailable,
            policy=self.retry_policy,
        )
        return ScimPortal(
            transport,
            environment.url,
            environment.token,
            overrides=mapping_overrides(environment.mapping),
            memory=PortalMemory(self.redis),
        )


def connect_redis(url: str, *, timeout: float = REDIS_SOCKET_TIMEOUT_SECONDS) -> redis.Redis:
    """A Redis client with timeouts (a dead Redis must not hang a process)."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
    )


def build_services(config: Config, *, retry_policy: RetryPolicy | None = None) -> Services:
    client = connect_redis(config.redis_url)
    graph_session = build_session(ca_bundle=config.ca_bundle)
    return Services(
        config=config,
        redis=client,
        registry=TenantRegistry(client, config.secret_key),
        audit=AuditLog(client),
        safety=SafetyState(client),
        runs=RunStore(client),
        graph_session=graph_session,
        portal_session=build_session(ca_bundle=config.ca_bundle),
        tokens=MsalTokenProvider(
            config.authority, config.client_id, config.client_secret, graph_session
        ),
        telemetry=Telemetry(client),
        retry_policy=retry_policy or RetryPolicy(),
    )
