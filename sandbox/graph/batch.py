"""``POST /$batch``: up to 20 requests in one, each handled (and throttled) on its own.

The outer answer is 200 whatever the inner ones say; inner answers come back in a shuffled
order, as Graph does not promise any, so clients must match them by ``id``. ``dependsOn`` is
honoured: a request whose dependency failed answers 424.

Failure policy: a malformed batch answers 400 as a whole; a malformed inner request answers
400 in its own slot.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox.graph.calls import ODATA_VERSION, GraphCall, Reply
from sandbox.graph.errors import GraphError, error_body, new_request_id

MAX_REQUESTS = 20
JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;charset=utf-8"

Dispatch = Callable[[GraphCall], Reply]


def _bad(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def _inner_error(status: int, code: str, message: str) -> dict[str, Any]:
    request_id = new_request_id()
    return {
        "status": status,
        "headers": {"Content-Type": JSON_TYPE},
        "body": error_body(code, message, request_id, request_id),
    }


def _check(requests: Any) -> list[dict[str, Any]]:
    if not isinstance(requests, list) or not requests:
        raise _bad("Invalid batch payload format.")
    if len(requests) > MAX_REQUESTS:
        raise _bad(f"The batch contains {len(requests)} requests; the limit is {MAX_REQUESTS}.")
    seen: set[str] = set()
    for entry in requests:
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) and entry.get(k) for k in ("id", "method", "url")
        ):
            raise _bad("Invalid batch payload format: each request needs id, method and url.")
        if entry["id"] in seen:
            raise _bad(f"Duplicate request id '{entry['id']}' in the batch.")
        seen.add(entry["id"])
    return requests


def _run_one(call: GraphCall, entry: dict[str, Any], dispatch: Dispatch) -> dict[str, Any]:
    url = entry["url"]
    if "://" in url:
        return _inner_error(400, "BadRequest", "Batch request URLs must be relative.")
    parts = urlsplit("/" + url.lstrip("/"))
    path = parts.path
    if path.startswith("/v1.0/"):
        path = path[len("/v1.0") :]
    raw_headers = entry.get("headers") or {}
    if not isinstance(raw_headers, dict):
        return _inner_error(400, "BadRequest", f"Headers of request '{entry['id']}' are invalid.")
    headers = {str(k).lower(): str(v) for k, v in raw_headers.items()}
    body = b""
    if "body" in entry:
        if "content-type" not in headers:
            return _inner_error(
                400,
                "BadRequest",
                f"Write request id : {entry['id']} does not contain Content-Type header or body.",
            )
        payload = entry["body"]
        body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    inner = GraphCall(
        registry=call.registry,
        tenant=call.tenant,
        method=entry["method"].upper(),
        path=path,
        args=dict(parse_qsl(parts.query, keep_blank_values=True)),
        headers=headers,
        body=body,
        base_url=call.base_url,
    )
    reply = dispatch(inner)
    answer: dict[str, Any] = {
        "status": reply.status,
        "headers": {"OData-Version": ODATA_VERSION, **reply.headers},
    }
    if reply.body is not None:
        text = isinstance(reply.body, str)
        answer["headers"].setdefault("Content-Type", "text/plain" if text else JSON_TYPE)
        answer["body"] = reply.body
    return answer


def batch(call: GraphCall, dispatch: Dispatch) -> Reply:
    requests = _check(call.json().get("requests"))
    done: dict[str, dict[str, Any]] = {}
    for entry in requests:
        depends = entry.get("dependsOn") or []
        failed = [d for d in depends if not 200 <= done.get(d, {}).get("status", 0) < 300]
        if failed:
            answer = _inner_error(
                424, "FailedDependency", f"Request {failed[0]} this one depends on failed."
            )
        else:
            answer = _run_one(call, entry, dispatch)
        done[entry["id"]] = {"id": entry["id"], **answer}
    responses = list(done.values())
    random.shuffle(responses)
    return Reply(200, {"responses": responses})
