"""Fault knobs and request counters, the sandbox's realism controls and its meter.

Knobs are set for the whole sandbox and, overriding those, per tenant: ``latency_ms`` (added to
every Graph call), ``throttle_share`` (share of Graph calls answered 429 with ``Retry-After:
retry_after_seconds``), ``error_share`` (share answered 500/503), ``drop_notification_share``
(share of change notifications silently lost), ``fail_after_requests`` (when N > 0 the next N
Graph calls of a tenant are answered and every later one fails with 503 until the knob changes;
0 turns it off). Counters count requests per endpoint and status,
overall and per tenant, and notifications delivered, failed, dropped and abandoned.

Failure policy: an unknown knob or a value out of range raises ``ValueError`` with a sentence;
nothing is changed.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

KNOB_DEFAULTS: dict[str, float] = {
    "latency_ms": 0.0,
    "throttle_share": 0.0,
    "retry_after_seconds": 1.0,
    "error_share": 0.0,
    "drop_notification_share": 0.0,
    "fail_after_requests": 0.0,
}
SHARE_KNOBS = frozenset({"throttle_share", "error_share", "drop_notification_share"})
MAX_LATENCY_MS = 60_000.0
MAX_RETRY_AFTER_SECONDS = 3600.0
NOTIFICATION_OUTCOMES = ("delivered", "failed_attempts", "dropped", "abandoned", "lifecycle")


def check_knobs(values: Any) -> dict[str, float]:
    """Validated knob values from a request body."""
    if not isinstance(values, dict):
        raise ValueError("knobs must be a JSON object")
    checked: dict[str, float] = {}
    for name, value in values.items():
        if name not in KNOB_DEFAULTS:
            raise ValueError(f"unknown knob '{name}'; known: {', '.join(KNOB_DEFAULTS)}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"knob '{name}' must be a number")
        number = float(value)
        if name in SHARE_KNOBS and not 0.0 <= number <= 1.0:
            raise ValueError(f"knob '{name}' is a share between 0 and 1")
        if name == "latency_ms" and not 0.0 <= number <= MAX_LATENCY_MS:
            raise ValueError(f"latency_ms must be between 0 and {MAX_LATENCY_MS:.0f}")
        if name == "fail_after_requests" and (number < 0 or not number.is_integer()):
            raise ValueError("fail_after_requests must be a whole number, 0 to turn it off")
        if name == "retry_after_seconds" and not 0.0 <= number <= MAX_RETRY_AFTER_SECONDS:
            raise ValueError(
                f"retry_after_seconds must be between 0 and {MAX_RETRY_AFTER_SECONDS:.0f}"
            )
        checked[name] = number
    return checked


class Knobs:
    """Sandbox-wide knob values; tenants keep their own overrides in ``Tenant.knobs``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict(KNOB_DEFAULTS)

    def set(self, values: dict[str, float]) -> None:
        with self._lock:
            self._values.update(values)

    def reset(self) -> None:
        with self._lock:
            self._values = dict(KNOB_DEFAULTS)

    def effective(self, overrides: dict[str, float] | None = None) -> dict[str, float]:
        with self._lock:
            values = dict(self._values)
        if overrides:
            values.update(overrides)
        return values


class Counters:
    """Request and notification counts since start or the last reset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: Counter[tuple[str, str, int]] = Counter()
            self._notifications: Counter[tuple[str, str]] = Counter()
            self._since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def request(self, tenant_id: str, endpoint: str, status: int) -> None:
        with self._lock:
            self._requests[(tenant_id, endpoint, status)] += 1

    def notification(self, tenant_id: str, outcome: str, count: int = 1) -> None:
        if count:
            with self._lock:
                self._notifications[(tenant_id, outcome)] += count

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            requests = dict(self._requests)
            notifications = dict(self._notifications)
            since = self._since
        overall: dict[str, dict[str, int]] = {}
        tenants: dict[str, dict[str, Any]] = {}
        for (tenant_id, endpoint, status), count in sorted(requests.items()):
            by_status = overall.setdefault(endpoint, {})
            by_status[str(status)] = by_status.get(str(status), 0) + count
            if tenant_id:
                per = tenants.setdefault(tenant_id, _empty_tenant())
                per["requests"].setdefault(endpoint, {})[str(status)] = count
        totals = dict.fromkeys(NOTIFICATION_OUTCOMES, 0)
        for (tenant_id, outcome), count in notifications.items():
            totals[outcome] = totals.get(outcome, 0) + count
            per = tenants.setdefault(tenant_id, _empty_tenant())
            per["notifications"][outcome] = per["notifications"].get(outcome, 0) + count
        return {
            "since": since,
            "requests": overall,
            "total_requests": sum(requests.values()),
            "notifications": totals,
            "tenants": tenants,
        }


def _empty_tenant() -> dict[str, Any]:
    return {"requests": {}, "notifications": dict.fromkeys(NOTIFICATION_OUTCOMES, 0)}
