"""The progress of a watched run, in Redis, as another process reads it."""

from __future__ import annotations

import redis

from common.state.progress import ProgressStore


def test_progress_is_read_by_another_client_and_ends_at_100_percent(redis_url: str) -> None:
    writer = ProgressStore(redis.Redis.from_url(redis_url))
    reader = ProgressStore(redis.Redis.from_url(redis_url))
    run = writer.start("tenant-1", environment="test")
    assert reader.current("tenant-1") == run
    assert reader.get(run)["percent"] == 0
    writer.status(run, "Reading Microsoft 365")
    writer.advance(run, "users", 25, 100)
    seen = reader.get(run)
    assert (seen["phase"], seen["done"], seen["total"], seen["percent"]) == ("users", 25, 100, 25)
    assert seen["status"] == "Reading Microsoft 365"
    writer.advance(run, "users", 26, 100)  # within the write interval: not written
    assert reader.get(run)["done"] == 25
    writer.advance(run, "classes", 100, 100)  # the last one always is
    assert reader.get(run)["percent"] == 100
    writer.finish(run, {"outcome": "ok", "applied": {"create_user": 100}})
    done = reader.get(run)
    assert done["state"] == "finished" and done["report"]["outcome"] == "ok"


def test_a_failed_run_says_why_and_unknown_runs_are_none(redis_url: str) -> None:
    store = ProgressStore(redis.Redis.from_url(redis_url))
    run = store.start("tenant-2", environment="production")
    store.finish(run, None, message="The portal refused the token.")
    failed = store.get(run)
    assert failed["state"] == "failed" and failed["percent"] == 100
    assert failed["message"] == "The portal refused the token." and failed["report"] is None
    assert store.get("no-such-run") is None
    assert store.current("tenant-3") is None
