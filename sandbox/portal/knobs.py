"""Realism knobs and request counters for the SCIM side (benchmarks and fault tests).

Knobs, for every organisation or per organisation (which wins):
``latency_ms`` added before each SCIM request; ``throttle_share`` of requests answered ``429``
with ``Retry-After: retry_after_seconds``; ``error_share`` answered ``error_status`` (5xx)
without doing anything; ``lost_answer_share`` of successful writes are carried out and then
answered ``error_status`` (the answer was lost: the client must find out what happened); the
modes of ``sandbox.portal.modes`` (1 on, 0 off) mimic what independent servers do.
Knobs live in memory: a restart clears them.

Counters: SCIM requests per organisation, method and status (as answered), and writes carried
out per kind (``user.create``, ``group.patch``, ...; a write whose answer was lost counts).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

from sandbox.portal.modes import MODES

DEFAULT_KNOBS: dict[str, float] = {
    "latency_ms": 0.0,
    "throttle_share": 0.0,
    "retry_after_seconds": 1.0,
    "error_share": 0.0,
    "error_status": 503.0,
    "lost_answer_share": 0.0,
    # modes that mimic independent servers (sandbox.portal.modes): 1 on, 0 off
    **dict.fromkeys(MODES, 0.0),
}
_LIMITS: dict[str, tuple[float, float]] = {
    "latency_ms": (0.0, 60_000.0),
    "throttle_share": (0.0, 1.0),
    "retry_after_seconds": (0.0, 3600.0),
    "error_share": (0.0, 1.0),
    "error_status": (500.0, 599.0),
    "lost_answer_share": (0.0, 1.0),
    **dict.fromkeys(MODES, (0.0, 1.0)),
}


def check_knobs(values: Any) -> dict[str, float]:
    """Validated knob values; ``ValueError`` names what is wrong."""
    if not isinstance(values, dict):
        raise ValueError("send a JSON object of knobs")
    checked: dict[str, float] = {}
    for name, value in values.items():
        if name not in _LIMITS:
            raise ValueError(f"unknown knob {name!r}; knobs are {', '.join(_LIMITS)}")
        low, high = _LIMITS[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise ValueError(f"{name} must be a number from {low:g} to {high:g}")
        checked[name] = float(value)
    return checked


def present(knobs: dict[str, float]) -> dict[str, float | int]:
    """Knobs as JSON, whole numbers where they are whole."""
    return {k: int(v) if k in ("error_status",) else v for k, v in knobs.items()}


class Knobs:
    """Knob values for all organisations and overrides per organisation."""

    def __init__(self, *, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._global = dict(DEFAULT_KNOBS)
        self._per_org: dict[str, dict[str, float]] = {}
        self._random = random.Random(seed)

    def effective(self, org: str | None) -> dict[str, float]:
        with self._lock:
            return {**self._global, **self._per_org.get(org or "", {})}

    def overrides(self, org: str) -> dict[str, float]:
        with self._lock:
            return dict(self._per_org.get(org, {}))

    def update(self, values: dict[str, float], org: str | None = None) -> None:
        with self._lock:
            if org is None:
                self._global.update(values)
            else:
                self._per_org.setdefault(org, {}).update(values)

    def reset(self, org: str | None = None) -> None:
        with self._lock:
            if org is None:
                self._global = dict(DEFAULT_KNOBS)
                self._per_org.clear()
            else:
                self._per_org.pop(org, None)

    def draw(self) -> float:
        with self._lock:
            return self._random.random()


class Counters:
    """Thread-safe request and write counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str, int]] = Counter()
        self._writes: Counter[tuple[str, str]] = Counter()

    def count_request(self, org: str, method: str, status: int) -> None:
        with self._lock:
            self._requests[(org, method, status)] += 1

    def count_write(self, org: str, kind: str) -> None:
        with self._lock:
            self._writes[(org, kind)] += 1

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._writes.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            requests = dict(self._requests)
            writes = dict(self._writes)
        organisations: dict[str, dict[str, Any]] = {}
        all_requests: dict[str, dict[str, int]] = {}
        all_writes: dict[str, int] = {}
        for (org, method, status), n in sorted(requests.items()):
            entry = organisations.setdefault(org, {"requests": {}, "writes": {}, "total": 0})
            by_status = entry["requests"].setdefault(method, {})
            by_status[str(status)] = by_status.get(str(status), 0) + n
            entry["total"] += n
            totals = all_requests.setdefault(method, {})
            totals[str(status)] = totals.get(str(status), 0) + n
        for (org, kind), n in sorted(writes.items()):
            entry = organisations.setdefault(org, {"requests": {}, "writes": {}, "total": 0})
            entry["writes"][kind] = n
            all_writes[kind] = all_writes.get(kind, 0) + n
        return {
            "organisations": organisations,
            "requests": all_requests,
            "writes": all_writes,
            "total": sum(requests.values()),
        }
