"""The long-lived pieces of one listener app, reachable from any request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import redis
from flask import current_app

from common.config import Config
from common.state.dispatch import Dispatcher
from common.state.subscriptions import SubscriptionStore
from listener.availability import RedisBreaker
from listener.metrics import ListenerMetrics

EXTENSION: Final = "skolsynk"
#: Graph batches notifications, but a megabyte is far more than it sends in one POST
MAX_BODY_BYTES: Final = 1024 * 1024


@dataclass(frozen=True)
class ListenerState:
    """What every request uses: config, Redis, the dispatcher, the subscriptions, metrics, and
    whether Redis may be asked right now."""

    config: Config
    redis: redis.Redis
    dispatcher: Dispatcher
    subscriptions: SubscriptionStore
    metrics: ListenerMetrics
    breaker: RedisBreaker


def state() -> ListenerState:
    """The ``ListenerState`` of the app serving the current request."""
    found: ListenerState = current_app.extensions[EXTENSION]
    return found
