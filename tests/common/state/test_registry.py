from __future__ import annotations

from dataclasses import replace

import pytest
import redis

from common.config import Secret, SecretKey
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


def test_a_changed_secret_key_fails_only_what_needs_the_token(registry: TenantRegistry) -> None:
    registry.add(a_tenant())
    other = TenantRegistry(registry.redis, Secret("another-secret-key-entirely"))
    tenant = other.get("Lunds kommun")
    assert tenant.name == "Lunds kommun"
    with pytest.raises(NeedsAttention, match="cannot be decrypted"):
        tenant.portal()
    # other settings can still be changed without losing the stored token
    other.save(replace(tenant, name="Lund"))
    assert registry.get("Lund").portal().token.reveal() == "tok-test"


def test_a_previous_key_decrypts_and_rekey_moves_every_token_to_the_new_key(
    registry: TenantRegistry,
) -> None:
    registry.add(a_tenant())
    new_key = SecretKey("the-new-secret-key-0123", (KEY,))
    rotated = TenantRegistry(registry.redis, new_key)
    assert rotated.get("Lunds kommun").portal().token.reveal() == "tok-test"

    assert rotated.rekey() == (1, [])

    only_new = TenantRegistry(registry.redis, SecretKey("the-new-secret-key-0123"))
    assert only_new.get("Lunds kommun").portal().token.reveal() == "tok-test"
    old_only = TenantRegistry(registry.redis, KEY)
    with pytest.raises(NeedsAttention):
        old_only.get("Lunds kommun").portal()


def test_rekey_names_a_tenant_whose_token_no_key_decrypts(registry: TenantRegistry) -> None:
    registry.add(a_tenant())
    stranger = TenantRegistry(registry.redis, Secret("a-key-that-never-wrote-it"))
    assert stranger.rekey() == (0, ["Lunds kommun"])
    # left as it was: the right key still reads it
    assert registry.get("Lunds kommun").portal().token.reveal() == "tok-test"


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


def test_remove_forgets_the_tenant_but_keeps_its_name_beside_its_audit_log(
    registry: TenantRegistry,
) -> None:
    registry.add(a_tenant())
    registry.redis.xadd("skolsynk:audit:11111111-2222-3333-4444-555555555555", {"e": "1"})
    registry.remove("Lunds kommun")
    assert registry.all() == []
    gone = registry.removed("lunds kommun")
    assert gone is not None and gone.id == "11111111-2222-3333-4444-555555555555"
    ttl = registry.redis.ttl("skolsynk:audit:11111111-2222-3333-4444-555555555555")
    assert 182 * 86400 < ttl <= 183 * 86400
    # registered again: the audit log is in use again and no longer ages out as a whole
    registry.add(a_tenant())
    assert registry.removed("Lunds kommun") is None
    assert registry.redis.ttl("skolsynk:audit:11111111-2222-3333-4444-555555555555") == -1
