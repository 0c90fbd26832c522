"""The links the sync keeps per tenant (which portal object it created or adopted for each
Microsoft object), against a private redis-server."""

from __future__ import annotations

import redis

from common.model import link_key
from common.state.links import FIELDS_PER_READ, Links


def test_a_link_is_recorded_read_and_forgotten_per_tenant(redis_client: redis.Redis) -> None:
    links = Links(redis_client)
    links.update("t1", [("user", "e1", "p1", True), ("group", "c1", "g1", True)])
    links.update("t2", [("user", "e1", "other", True)])
    assert links.all("t1") == {link_key("user", "e1"): "p1", link_key("group", "c1"): "g1"}
    assert links.some("t1", [link_key("user", "e1"), link_key("user", "nobody")]) == {
        link_key("user", "e1"): "p1"
    }
    # linked again (a copy adopted after a takeover); the old object's deletion leaves the new link
    links.update("t1", [("user", "e1", "p2", True), ("user", "e1", "p1", False)])
    assert links.all("t1")[link_key("user", "e1")] == "p2"
    links.update("t1", [("user", "e1", "p2", False)])
    assert link_key("user", "e1") not in links.all("t1")
    links.drop("t1")
    assert links.all("t1") == {} and links.all("t2") == {link_key("user", "e1"): "other"}


def test_a_runs_changes_apply_in_the_order_its_writes_ended(redis_client: redis.Redis) -> None:
    links = Links(redis_client)
    # a create whose answer was lost left a second copy, deleted by the same run: the link
    # the create made stays
    links.update("t1", [("group", "c1", "g1", True), ("group", "c1", "g2", False)])
    assert links.all("t1") == {link_key("group", "c1"): "g1"}
    # an object created and then deleted within one run leaves no link
    links.update("t1", [("user", "e1", "p1", True), ("user", "e1", "p1", False)])
    assert link_key("user", "e1") not in links.all("t1")


def test_many_links_are_read_in_rounds(redis_client: redis.Redis) -> None:
    links = Links(redis_client)
    count = FIELDS_PER_READ * 2 + 5
    links.update("big", [("user", f"e{n}", f"p{n}", True) for n in range(count)])
    keys = [link_key("user", f"e{n}") for n in range(count)] + ["user:absent"]
    found = links.some("big", keys)
    assert len(found) == count and found[link_key("user", "e7")] == "p7"
