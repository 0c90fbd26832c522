from __future__ import annotations

import pytest
import redis

from common.config import Secret
from common.errors import ConfigError, NeedsAttention, UnknownTenant
from common.model import Scope
from common.state.registry import PortalEnvironment, Tenant, TenantRegistry

KEY = Secret("a-secret-key-of-some-length")


@pytest.fixture
def registry(redis_url: str) -> TenantRegistry:
    return TenantRegistry(redis.Redis.from_url(redis_url), KEY)


def a_tenant(**changes: object) -> Tenant:
    base = Tenant(
        id="11111111-2222-3333-4444-555555555555",
        name="Lunds kommun",
        portals={"test": PortalEnvironment("http://portal.test/scim/v2/lund", Secret("tok-test"))},
    )
    return Tenant(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_new_tenant_starts_on_test_and_round_trips(registry: TenantRegistry) -> None:
    registry.add(a_tenant(scope=Scope(school_ids=frozenset({"S1"}), class_pattern="7*")))
    stored = registry.get("11111111-2222-3333-4444-555555555555")
    assert stored.environment == "test"
    assert stored.portal().token.reveal() == "tok-test"
    assert stored.scope.school_ids == {"S1"}
    assert stored.scope.class_pattern == "7*"
    assert stored.created_at


def test_finds_a_tenant_by_name_in_any_case(registry: TenantRegistry) -> None:
    registry.add(a_tenant())
    assert registry.get("LUNDS KOMMUN").id == "11111111-2222-3333-4444-555555555555"


def test_portal_token_is_encrypted_at_rest(registry: TenantRegistry) -> None:
    registry.add(a_tenant())
    raw = registry.redis.get("skolsynk:tenant:11111111-2222-3333-4444-555555555555")
    assert b"tok-test" not in raw


def test_a_changed_secret_key_is_a_clear_error(registry: TenantRegistry) -> None:
    registry.add(a_tenant())
    other = TenantRegistry(registry.redis, Secret("another-secret-key-entirely"))
    with pytest.raises(NeedsAttention, match="cannot be decrypted"):
        other.get("Lunds kommun")


def test_unknown_tenant_names_itself(registry: TenantRegistry) -> None:
    with pytest.raises(UnknownTenant, match="nope"):
        registry.get("nope")


def test_refuses_a_second_tenant_with_the_same_id_or_name(registry: TenantRegistry) -> None:
    registry.add(a_tenant())
    with pytest.raises(NeedsAttention):
        registry.add(a_tenant())
    with pytest.raises(NeedsAttention):
        registry.add(a_tenant(id="another-id"))


def test_reports_every_bad_setting_at_once(registry: TenantRegistry) -> None:
    bad = a_tenant(
        name=" ",
        environment="production",
        portals={"test": PortalEnvironment("ftp://x", Secret(""))},
    )
    with pytest.raises(ConfigError) as info:
        registry.add(bad)
    assert len(info.value.problems) == 4


def test_remove_forgets_the_tenant(registry: TenantRegistry) -> None:
    registry.add(a_tenant())
    registry.remove("Lunds kommun")
    assert registry.all() == []
