"""The JSON API outside SCIM.

Admin (bearer admin token): ``POST/GET /api/organisations``, ``GET/PUT/DELETE /_sandbox/knobs``
(and ``/_sandbox/organisations/{name}/knobs``), ``GET/DELETE /_sandbox/counters``.
Without a token: ``GET /_sandbox/health``.

The portal's own API per organisation (bearer token of that organisation):
``/api/{org}/users``, ``/api/{org}/groups``, ``/api/{org}/licences`` (see ``portal_store``).
Errors are ``{"error": "sentence"}``.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from sandbox.portal.context import current
from sandbox.portal.db import Organisation
from sandbox.portal.errors import ApiError
from sandbox.portal.knobs import check_knobs, present

bp = Blueprint("api", __name__)


def _bearer() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _require_admin() -> None:
    if not hmac.compare_digest(_bearer(), current().admin_token):
        raise ApiError(401, "the admin token is required (see portal.json)")


def _org(name: str) -> Organisation:
    org = current().db.organisation(name)
    if org is None:
        raise ApiError(404, f"no organisation {name!r}")
    if not hmac.compare_digest(_bearer(), org.token):
        raise ApiError(401, f"the bearer token of organisation {name!r} is required")
    g.org = org
    return org


def _json() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "send a JSON body")
    return body


def org_entry(org: Organisation, *, with_token: bool = True) -> dict[str, Any]:
    entry = {"name": org.name, "scim_url": f"{request.host_url}scim/v2/{org.name}"}
    if with_token:
        entry["token"] = org.token
    return entry


# --- admin -------------------------------------------------------------------------------------


@bp.get("/_sandbox/health")
def health() -> Response:
    return jsonify(status="ok")


@bp.post("/api/organisations")
def create_organisation() -> tuple[Response, int]:
    _require_admin()
    body = _json()
    name = body.get("name") if isinstance(body, dict) else None
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(name, str) or (token is not None and not isinstance(token, str)):
        raise ApiError(400, 'send {"name": "..."} (and optionally "token")')
    try:
        org = current().db.create_organisation(name, token)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from exc
    except KeyError as exc:
        raise ApiError(409, f"organisation {name!r} exists") from exc
    return jsonify(org_entry(org)), 201


@bp.get("/api/organisations")
def list_organisations() -> Response:
    _require_admin()
    return jsonify(organisations=[org_entry(o) for o in current().db.organisations()])


def _knob_target(name: str | None) -> str | None:
    if name is not None and current().db.organisation(name) is None:
        raise ApiError(404, f"no organisation {name!r}")
    return name


@bp.route("/_sandbox/knobs", methods=["GET", "PUT", "DELETE"], defaults={"name": None})
@bp.route("/_sandbox/organisations/<name>/knobs", methods=["GET", "PUT", "DELETE"])
def knobs(name: str | None) -> Response:
    _require_admin()
    portal = current()
    org = _knob_target(name)
    if request.method == "PUT":
        try:
            portal.knobs.update(check_knobs(_json()), org)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
    elif request.method == "DELETE":
        portal.knobs.reset(org)
    body: dict[str, Any] = present(portal.knobs.effective(org))
    if org is not None:
        body = {**body, "overrides": present(portal.knobs.overrides(org))}
    return jsonify(body)


@bp.get("/_sandbox/counters")
def counters() -> Response:
    _require_admin()
    return jsonify(current().counters.snapshot())


@bp.delete("/_sandbox/counters")
def clear_counters() -> tuple[str, int]:
    _require_admin()
    current().counters.clear()
    return "", 204


# --- the portal's own API ----------------------------------------------------------------------


@bp.get("/api/<org>/users")
def list_users(org: str) -> Response:
    return jsonify(users=current().store.users(_org(org)))


@bp.post("/api/<org>/users")
def create_user(org: str) -> tuple[Response, int]:
    organisation = _org(org)
    return jsonify(current().store.create_user(organisation, _json())), 201


@bp.patch("/api/<org>/users/<rid>")
def update_user(org: str, rid: str) -> Response:
    organisation = _org(org)
    return jsonify(current().store.update_user(organisation, rid, _json()))


@bp.delete("/api/<org>/users/<rid>")
def delete_user(org: str, rid: str) -> tuple[str, int]:
    current().store.delete_user(_org(org), rid)
    return "", 204


@bp.get("/api/<org>/groups")
def list_groups(org: str) -> Response:
    return jsonify(groups=current().store.groups(_org(org)))


@bp.post("/api/<org>/groups")
def create_group(org: str) -> tuple[Response, int]:
    organisation = _org(org)
    return jsonify(current().store.create_group(organisation, _json())), 201


@bp.patch("/api/<org>/groups/<rid>")
def update_group(org: str, rid: str) -> Response:
    organisation = _org(org)
    return jsonify(current().store.update_group(organisation, rid, _json()))


@bp.delete("/api/<org>/groups/<rid>")
def delete_group(org: str, rid: str) -> tuple[str, int]:
    current().store.delete_group(_org(org), rid)
    return "", 204


@bp.get("/api/<org>/licences")
def list_licences(org: str) -> Response:
    return jsonify(licences=current().store.licences(_org(org)))


@bp.post("/api/<org>/licences")
def assign_licence(org: str) -> tuple[Response, int]:
    organisation = _org(org)
    return jsonify(current().store.assign_licence(organisation, _json())), 201


@bp.delete("/api/<org>/licences/<licence_id>")
def remove_licence(org: str, licence_id: str) -> tuple[str, int]:
    current().store.remove_licence(_org(org), licence_id)
    return "", 204
