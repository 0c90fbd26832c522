"""The portal's HTML pages: organisations, and per organisation its users, groups and licences.

Plain server-rendered pages for people. Schools are shown by name (what SDS calls them, as the
sync sent it), by id only where no name came. They show no tokens and need none, so they answer only
requests from the loopback address (the portal listens on 127.0.0.1 by default); any other
client gets 403. Rows are in Swedish alphabetical order (å, ä, ö after z); users and groups that
share an ``externalId`` (duplicates the sync must repair) are marked. Long lists are shown a page
at a time (``?page=N``). An unknown organisation gets a page in Swedish and English, with 404.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

from flask import Blueprint, abort, render_template, request

from sandbox.portal.context import current

PAGE_SIZE = 200

bp = Blueprint("html", __name__, template_folder="templates")

#: å, ä, ö come after z in Swedish, in that order (code points would put ä before å); the
#: three characters after "z" in ASCII stand for them; é is an e, ü a y, æ an ä, ø an ö
_SWEDISH_ORDER = str.maketrans(
    {"å": "{", "ä": "|", "æ": "|", "ö": "}", "ø": "}", "é": "e", "è": "e", "ü": "y"}
)


def swedish_key(text: str | None) -> str:
    """A sort key for names as a Swedish reader expects them ordered."""
    return (text or "").casefold().translate(_SWEDISH_ORDER)


def user_schools(row: dict[str, Any]) -> list[str]:
    """What a user's schools are called on the page, sorted: the school names the sync sent,
    else the enterprise ``organization`` (a portal without the school extension), else the
    school ids."""
    organization = [row["organization"]] if row.get("organization") else []
    shown = row.get("schoolNames") or organization or row.get("schools") or []
    return sorted(shown, key=swedish_key)


def _mark_duplicates(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set ``duplicate`` on every row whose externalId another row also has."""
    counts = Counter(r.get("externalId") for r in rows if r.get("externalId"))
    for row in rows:
        row["duplicate"] = counts.get(row.get("externalId"), 0) > 1
    return rows


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
        for org in sorted(portal.db.organisations(), key=lambda o: swedish_key(o.name))
    ]
    return render_template("index.html", organisations=organisations)


@bp.get("/<org>/")
def organisation(org: str) -> str | tuple[str, int]:
    portal = current()
    found = portal.db.organisation(org)
    if found is None:
        names = sorted((o.name for o in portal.db.organisations()), key=swedish_key)
        return render_template("unknown_organisation.html", org=org, organisations=names), 404
    page = max(1, request.args.get("page", 1, type=int) or 1)
    offset = (page - 1) * PAGE_SIZE
    # all rows, to sort them and find duplicates across pages; then one page of each
    users = _mark_duplicates(portal.store.users(found))
    for user in users:
        user["schoolLabels"] = user_schools(user)
    users.sort(key=lambda u: (swedish_key(u["displayName"]), swedish_key(u["userName"])))
    groups = _mark_duplicates(portal.store.groups(found))
    groups.sort(key=lambda g: (swedish_key(g["displayName"]), g["id"]))
    licences = portal.store.licences(found, with_holder=True)
    licences.sort(key=lambda lic: (swedish_key(lic["product"]), swedish_key(lic.get("holder"))))
    pages = max(1, -(-max(len(users), len(groups)) // PAGE_SIZE))
    return render_template(
        "organisation.html",
        org=found.name,
        users=users[offset : offset + PAGE_SIZE],
        groups=groups[offset : offset + PAGE_SIZE],
        licences=licences,
        user_total=len(users),
        group_total=len(groups),
        duplicate_users=sum(u["duplicate"] for u in users),
        duplicate_groups=sum(g["duplicate"] for g in groups),
        page=page,
        pages=pages,
    )
