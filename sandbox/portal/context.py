"""What the views share: the database and stores, the knobs and counters, the admin token."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from sandbox.portal.db import Database
from sandbox.portal.knobs import Counters, Knobs
from sandbox.portal.portal_store import PortalStore
from sandbox.portal.scim_store import ScimStore


@dataclass
class Portal:
    db: Database
    scim: ScimStore
    store: PortalStore
    knobs: Knobs
    counters: Counters
    admin_token: str


def current() -> Portal:
    """The portal of the running Flask app."""
    portal: Portal = current_app.extensions["portal"]
    return portal
