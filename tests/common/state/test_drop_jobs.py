"""A school that disconnects leaves nothing waiting in the queues; other schools keep theirs."""

from __future__ import annotations

import redis

from common.state.dispatch import (
    Change,
    Dispatcher,
    drop_tenant_jobs,
    pending_key,
    reconcile_pending_key,
)


def test_jobs_and_markers_of_one_tenant_are_dropped(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    dispatcher = Dispatcher(client)
    dispatcher.enqueue_changes(
        [
            Change("gone", "user", "u1"),
            Change("gone", "group", "g1"),
            Change("stays", "user", "u2"),
        ]
    )
    dispatcher.enqueue_reconcile("gone", why="test")
    dispatcher.enqueue_reconcile("stays", why="test")
    assert dispatcher.live.count == 3 and dispatcher.reconcile.count == 2

    assert drop_tenant_jobs(dispatcher, "gone") == 3
    assert [j.args for j in dispatcher.live.get_jobs()] == [["stays", "u2"]]
    assert [j.args[0] for j in dispatcher.reconcile.get_jobs()] == ["stays"]
    assert not client.exists(pending_key("gone", "user", "u1"), reconcile_pending_key("gone"))
    assert client.exists(pending_key("stays", "user", "u2"))
    # a change for the tenant is queued again at once if it were ever connected again
    assert dispatcher.enqueue_change("gone", "user", "u1")
    client.close()
