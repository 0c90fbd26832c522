"""Fuzzing both Graph endpoints: whatever arrives, never a 5xx while Redis is up, and never a
job for an item that fails a check.

Items are built from parts that are each either right or wrong in a known way, so the test knows
which items are valid without asking the code under test; random JSON, content types, headers
and query strings go around them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.config import Secret
from common.state.subscriptions import SubscriptionStore
from tests.listener.conftest import SECRET_KEY, Registered, queued, register, renewals
from tests.listener.graph_payloads import OTHER_TENANT, TENANT

pytestmark = pytest.mark.slow  # hundreds of generated requests each

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

GUIDS = st.uuids(version=4).map(str)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=40
)


ITEM_KEYS = frozenset(
    ("subscriptionId", "clientState", "tenantId", "organizationId", "changeType", "resource")
)


@dataclass(frozen=True)
class Built:
    """An item, and the job it must cause (None: it must cause none)."""

    item: Any
    expected: tuple[str, str, str] | None


def mostly(right: str | list[str], wrong: list[str]) -> st.SearchStrategy[str]:
    """A right choice four times in five, so a fair share of items pass every check."""
    rights = [right] if isinstance(right, str) else right
    return st.integers(0, 4).flatmap(
        lambda n: st.sampled_from(wrong) if n == 0 else st.sampled_from(rights)
    )


def _users_or_groups(subs: Registered) -> st.SearchStrategy[tuple[Any, str]]:
    return st.sampled_from([(subs.users, "Users"), (subs.groups, "Groups")])


@st.composite
def change_items(draw: st.DrawFn, subs: Registered) -> Built:
    sub, collection = draw(_users_or_groups(subs))
    object_id = draw(GUIDS)
    valid = True
    subscription_id = draw(mostly("right", ["other_tenant", "unknown", "missing", "junk"]))
    item: dict[str, Any] = {}
    if subscription_id == "right":
        item["subscriptionId"] = draw(st.sampled_from([sub.id, sub.id.upper()]))
    else:
        valid = False
        if subscription_id == "other_tenant":
            item["subscriptionId"] = subs.other_tenant_users.id
        elif subscription_id == "unknown":
            item["subscriptionId"] = draw(GUIDS)
        elif subscription_id == "junk":
            item["subscriptionId"] = draw(json_values)
    state = draw(mostly("right", ["wrong", "none", "missing", "junk"]))
    if state == "right":
        item["clientState"] = sub.client_state
    else:
        valid = False
        if state == "wrong":
            item["clientState"] = draw(
                st.text(max_size=300).filter(lambda s: s != sub.client_state)
            )
        elif state == "none":
            item["clientState"] = None
        elif state == "junk":
            item["clientState"] = draw(json_values.filter(lambda v: v != sub.client_state))
    tenant = draw(mostly(["tenantId", "organizationId", "both"], ["other", "missing", "junk"]))
    if tenant == "tenantId":
        item["tenantId"] = draw(st.sampled_from([TENANT, TENANT.upper()]))
    elif tenant == "organizationId":
        item["organizationId"] = TENANT
    elif tenant == "both":
        item["tenantId"], item["organizationId"] = TENANT, OTHER_TENANT
    else:
        valid = False
        if tenant == "other":
            item["tenantId"] = OTHER_TENANT
        elif tenant == "junk":
            item["tenantId"] = draw(json_values.filter(lambda v: v not in (None, "", TENANT)))
    change_type = draw(mostly(["updated", "deleted", "created"], ["junk", "missing"]))
    if change_type in ("updated", "deleted", "created"):
        item["changeType"] = change_type
    else:
        valid = False
        if change_type == "junk":
            item["changeType"] = draw(
                json_values.filter(lambda v: v not in ("updated", "deleted", "created"))
            )
    resource = draw(mostly(["right", "lower"], ["other_kind", "not_guid", "junk", "missing"]))
    if resource == "right":
        item["resource"] = f"{collection}/{object_id}"
    elif resource == "lower":
        item["resource"] = f"/{collection.lower()}/{object_id}"
    else:
        valid = False
        if resource == "other_kind":
            other = "Groups" if collection == "Users" else "Users"
            item["resource"] = f"{other}/{object_id}"
        elif resource == "not_guid":
            item["resource"] = f"{collection}/{draw(st.text(max_size=30))}"
        elif resource == "junk":
            item["resource"] = draw(json_values)
    for key, value in draw(st.dictionaries(st.text(max_size=12), json_values, max_size=3)).items():
        if key not in ITEM_KEYS:
            item[key] = value
    kind = "user" if collection == "Users" else "group"
    job = f"worker.jobs.sync_{kind}"
    return Built(item, (job, TENANT, object_id) if valid else None)


@st.composite
def lifecycle_items(draw: st.DrawFn, subs: Registered) -> Built:
    sub, _ = draw(_users_or_groups(subs))
    valid = True
    item: dict[str, Any] = {"subscriptionId": sub.id, "clientState": sub.client_state}
    if draw(st.booleans()):
        valid = False
        item["clientState"] = draw(st.text(max_size=40).filter(lambda s: s != sub.client_state))
    if draw(st.booleans()):
        valid = False
        item["subscriptionId"] = draw(st.sampled_from([subs.other_tenant_users.id, "unknown"]))
    item[draw(st.sampled_from(["tenantId", "organizationId"]))] = TENANT
    event = draw(st.sampled_from(["reauthorizationRequired", "missed", "subscriptionRemoved", "x"]))
    item["lifecycleEvent"] = event
    renews = valid and event == "reauthorizationRequired"
    return Built(item, ("worker.jobs.renew_subscriptions", TENANT, "") if renews else None)


def _fresh(redis_client: redis.Redis) -> Registered:
    redis_client.flushdb()
    return register(SubscriptionStore(redis_client, Secret(SECRET_KEY)))


@FUZZ
@given(data=st.data())
def test_notifications_fuzz_never_5xx_and_queues_exactly_the_valid_items(
    client: FlaskClient, redis_client: redis.Redis, data: st.DataObject
) -> None:
    subs = _fresh(redis_client)
    built = data.draw(st.lists(change_items(subs), max_size=6))
    # random members around the collection, which Graph may add too
    extra = data.draw(st.dictionaries(st.text(max_size=10), json_values, max_size=3))
    document = {
        **{k: v for k, v in extra.items() if k != "value"},
        "value": [b.item for b in built],
    }
    response = client.post("/graph/notifications", json=document)
    assert response.status_code == 202
    expected = {b.expected for b in built if b.expected is not None}
    got = {(name, *args) for name, args in queued(redis_client)}
    assert got == expected
    assert len(queued(redis_client)) == len(expected)


@FUZZ
@given(data=st.data())
def test_lifecycle_fuzz_never_5xx_and_renews_only_for_valid_reauthorization(
    client: FlaskClient, redis_client: redis.Redis, data: st.DataObject
) -> None:
    subs = _fresh(redis_client)
    built = data.draw(st.lists(lifecycle_items(subs), max_size=4))
    response = client.post("/graph/lifecycle", json={"value": [b.item for b in built]})
    assert response.status_code == 202
    wanted = (
        [("worker.jobs.renew_subscriptions", [TENANT])] if any(b.expected for b in built) else []
    )
    assert renewals(redis_client) == wanted
    assert queued(redis_client) == []


@dataclass(frozen=True)
class RandomRequest:
    body: bytes
    content_type: str
    headers: dict[str, str]
    query: dict[str, str]


random_requests = st.builds(
    RandomRequest,
    body=st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.builds(lambda v: json.dumps({"value": v}).encode(), st.lists(json_values, max_size=5)),
    ),
    content_type=st.one_of(
        st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain"]),
        header_text,
    ),
    headers=st.dictionaries(
        st.text(
            alphabet=st.characters(min_codepoint=0x41, max_codepoint=0x5A), min_size=1, max_size=12
        ).map(lambda s: "X-" + s),
        header_text,
        max_size=3,
    ),
    query=st.dictionaries(st.text(max_size=16), st.text(max_size=40), max_size=3),
)


@FUZZ
@pytest.mark.parametrize("path", ["/graph/notifications", "/graph/lifecycle"])
@given(request=random_requests)
def test_random_requests_never_5xx_and_never_queue_anything(
    client: FlaskClient, redis_client: redis.Redis, path: str, request: RandomRequest
) -> None:
    _fresh(redis_client)
    response = client.post(
        path,
        data=request.body,
        content_type=request.content_type,
        headers=request.headers,
        query_string=request.query,
    )
    assert response.status_code < 500
    if "validationToken" in request.query:
        assert response.status_code == 200
        assert response.get_data(as_text=True) == request.query["validationToken"]
    assert queued(redis_client) == []
    assert renewals(redis_client) == []
