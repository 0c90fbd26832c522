"""The portal's HTML pages: organisations, and per organisation its users, groups and licences.

Plain server-rendered pages for people. They show no tokens and need none, so they answer only
requests from the loopback address (the portal listens on 127.0.0.1 by default); any other
client gets 403. Long lists are shown a page at a time (``?page=N``).
"""

from __future__ import annotations

import ipaddress

from flask import Blueprint, abort, render_template, request

from sandbox.portal.context import current

PAGE_SIZE = 200

bp = Blueprint("html", __name__, template_folder="templates")


@bp.before_request
def _loopback_only() -> None:
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        abort(403)
    if not address.is_loopback:
        abort(403, "The portal's pages are shown on this machine only (loopback).")


@bp.get("/")
def index() -> str:
    portal = current()
    organisations = [
        {
            "name": org.name,
            "users": portal.store.count(org, "users"),
            "groups": portal.store.count(org, "groups"),
            "licences": portal.store.count(org, "licences"),
        }
        for org in portal.db.organisations()
    ]
    return render_template("index.html", organisations=organisations)


@bp.get("/<org>/")
def organisation(org: str) -> str:
    portal = current()
    found = portal.db.organisation(org)
    if found is None:
        abort(404, f"No organisation {org!r}.")
    page = max(1, request.args.get("page", 1, type=int) or 1)
    offset = (page - 1) * PAGE_SIZE
    users = portal.store.users(found, offset=offset, limit=PAGE_SIZE)
    groups = portal.store.groups(found, offset=offset, limit=PAGE_SIZE)
    user_total = portal.store.count(found, "users")
    group_total = portal.store.count(found, "groups")
    pages = max(1, -(-max(user_total, group_total) // PAGE_SIZE))
    return render_template(
        "organisation.html",
        org=found.name,
        users=users,
        groups=groups,
        licences=portal.store.licences(found, with_holder=True),
        user_total=user_total,
        group_total=group_total,
        page=page,
        pages=pages,
    )
