"""What a persistent failure costs: the transport's attempts times the job's runs (common.http).

The transport retries short failures (a few seconds in all); the job-level retries of rq run the
whole job again only for failures that outlast it. Both are measured here as production builds
them: the clients from ``build_services`` with the default policy against the sandboxes, the job
as the dispatcher queues it. The product is the figure ``common/http.py`` documents.
"""

from __future__ import annotations

from typing import Any

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer

from common.config import load_config
from common.errors import GraphUnavailable, PortalUnavailable, Throttled, TransientError
from common.state.dispatch import Dispatcher
from common.sync.services import build_services

#: common/http.py: "a persistent failure costs at most 4 x 3 = 12 attempts per changed object"
ATTEMPTS_PER_REQUEST = 4
RUNS_PER_OBJECT_JOB = 3


def _graph_requests(world: Any) -> int:
    tenant = world.graph_sandbox.counters()["tenants"].get(world.tenant_id, {})
    return sum(
        count
        for endpoint, by_status in tenant.get("requests", {}).items()
        if not endpoint.startswith("token")
        for count in by_status.values()
    )


def _portal_requests(world: Any) -> int:
    org = world.portal_server.counters()["organisations"].get(world.portal.name, {})
    return sum(sum(by_status.values()) for by_status in org.get("requests", {}).values())


def _runs_of_an_object_job(world: Any) -> int:
    dispatcher = Dispatcher(world.services.redis)
    assert dispatcher.enqueue_change(world.tenant_id, "user", "budget-user")
    [job_id] = [
        key.decode().removeprefix("rq:job:") for key in world.services.redis.keys("rq:job:*")
    ]
    job = Job.fetch(job_id, connection=world.services.redis, serializer=JSONSerializer)
    assert job.retries_left is not None
    return 1 + job.retries_left


@pytest.mark.slow
@pytest.mark.parametrize(
    ("knobs", "error"),
    [
        ({"error_share": 1.0}, GraphUnavailable),
        ({"throttle_share": 1.0, "retry_after_seconds": 0.0}, Throttled),
    ],
    ids=["5xx", "429"],
)
def test_a_persistent_graph_failure_costs_four_attempts_a_run_and_three_runs(
    make_world: Any, knobs: dict[str, float], error: type[TransientError]
) -> None:
    world = make_world(sample="classic-min")
    services = build_services(load_config(world.env))  # the production policy, real waits
    graph = services.graph(world.tenant_id)
    graph.get("/users", {"$top": 1})  # a token first: the token endpoint is not what is measured
    world.graph_sandbox.set_knobs(world.tenant_id, **knobs)
    before = _graph_requests(world)
    with pytest.raises(error):
        graph.get("/users")
    world.graph_sandbox.set_knobs(world.tenant_id, error_share=0.0, throttle_share=0.0)

    assert _graph_requests(world) - before == ATTEMPTS_PER_REQUEST
    assert _runs_of_an_object_job(world) == RUNS_PER_OBJECT_JOB
    services.redis.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("knobs", "error"),
    [
        ({"error_share": 1.0}, PortalUnavailable),
        ({"throttle_share": 1.0, "retry_after_seconds": 0.0}, Throttled),
    ],
    ids=["5xx", "429"],
)
def test_a_persistent_portal_failure_costs_four_attempts_a_run(
    make_world: Any, knobs: dict[str, float], error: type[TransientError]
) -> None:
    world = make_world(sample="classic-min")
    services = build_services(load_config(world.env))
    portal = services.portal(services.registry.get(world.tenant_id))
    world.portal_server.set_knobs(world.portal.name, **knobs)
    before = _portal_requests(world)
    with pytest.raises(error):
        list(portal.list_users())
    world.portal_server.set_knobs(world.portal.name, error_share=0.0, throttle_share=0.0)

    assert _portal_requests(world) - before == ATTEMPTS_PER_REQUEST
    services.redis.close()
