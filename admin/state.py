"""What one admin process holds: its configuration, services and sign-in client.

Built once by ``create_app`` and kept in ``app.extensions``; views reach it through ``state()``.
Nothing here holds per-request or per-person data (that lives in the session and in Redis).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from admin.identity import SignIn
from common.config import Config
from common.state.dispatch import Dispatcher
from common.state.progress import ProgressStore
from common.state.subscriptions import SubscriptionStore
from common.sync.services import Services

EXTENSION = "skolsynk_admin"


@dataclass
class AdminState:
    """The long-lived pieces of an admin process."""

    config: Config
    services: Services
    signin: SignIn
    progress: ProgressStore
    dispatcher: Dispatcher
    subscriptions: SubscriptionStore


def state() -> AdminState:
    """This app's ``AdminState``."""
    found: AdminState = current_app.extensions[EXTENSION]
    return found
