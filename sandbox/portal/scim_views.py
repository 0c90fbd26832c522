"""The SCIM 2.0 endpoints of one organisation, under ``/scim/v2/{organisation}``.

Bearer token of that organisation (401 otherwise), ``application/scim+json`` (or
``application/json``) in and out, SCIM error bodies for every failure, ``ETag`` on single
resources with ``If-Match`` (412) and ``If-None-Match`` (304).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterable
from typing import Any, Protocol

from flask import Blueprint, Response, g, request

from sandbox.portal import modes
from sandbox.portal.context import current
from sandbox.portal.errors import (
    ScimError,
    invalid_filter,
    invalid_syntax,
    invalid_value,
    not_found,
)
from sandbox.portal.filter_syntax import parse
from sandbox.portal.filters import CASE_EXACT_FILTERS, compile_filter, resolve
from sandbox.portal.patch import apply_patch
from sandbox.portal.resources import normalise_resource, project
from sandbox.portal.schemas import (
    ALL_SCHEMAS,
    GROUPS,
    KINDS,
    MAX_RESULTS,
    USERS,
    ResourceKind,
    service_provider_config,
)
from sandbox.portal.scim_rows import etag_matches

SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
MEDIA_TYPES = ("application/scim+json", "application/json")
BY_ENDPOINT = {"Users": USERS, "Groups": GROUPS}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

bp = Blueprint("scim", __name__, url_prefix="/scim/v2/<org>")


@bp.url_value_preprocessor
def _pull_org(endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.org_name = (values or {}).pop("org", None)


@bp.before_request
def _authenticate_and_disturb() -> Response | None:
    portal = current()
    org = portal.db.organisation(g.org_name or "")
    if org is None:
        raise not_found(f"no organisation {g.org_name!r} on this portal")
    g.org = org
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), org.token):
        raise ScimError(401, "a valid bearer token of this organisation is required")
    knobs = portal.knobs.effective(org.name)
    if knobs["latency_ms"] > 0:
        time.sleep(knobs["latency_ms"] / 1000)
    if knobs["throttle_share"] > 0 and portal.knobs.draw() < knobs["throttle_share"]:
        response = error_response(ScimError(429, "too many requests; try again later"))
        response.headers["Retry-After"] = str(int(knobs["retry_after_seconds"]))
        return response
    if knobs["error_share"] > 0 and portal.knobs.draw() < knobs["error_share"]:
        status = int(knobs["error_status"])
        return error_response(ScimError(status, "the portal failed (a simulated fault)"))
    return None


@bp.after_request
def _count(response: Response) -> Response:
    org = g.get("org")
    if org is None:
        return response
    portal = current()
    knobs = portal.knobs.effective(org.name)
    share = knobs["lost_answer_share"]
    if (
        share > 0
        and request.method in WRITE_METHODS
        and response.status_code < 300
        and portal.knobs.draw() < share
    ):
        status = int(knobs["error_status"])
        response = error_response(ScimError(status, "the portal failed after the change"))
    portal.counters.count_request(org.name, request.method, response.status_code)
    return response


def error_response(error: ScimError) -> Response:
    response = scim_response(error.body(), error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="skolsynk-portal"'
    return response


def scim_response(payload: Any, status: int = 200, *, etag: str | None = None) -> Response:
    response = Response(json.dumps(payload, ensure_ascii=False), status, mimetype=MEDIA_TYPES[0])
    if etag:
        response.headers["ETag"] = etag
    return response


def base_url() -> str:
    return f"{request.host_url}scim/v2/{g.org.name}"


def read_body() -> Any:
    if request.mimetype and request.mimetype not in MEDIA_TYPES:
        raise ScimError(415, f"send {MEDIA_TYPES[0]} (or application/json), not {request.mimetype}")
    try:
        return json.loads(request.get_data() or b"null")
    except ValueError as exc:
        raise invalid_syntax(f"the request body is not JSON: {exc}") from exc


def _names(value: Any, what: str) -> list[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise invalid_value(f"{what} must be a comma-separated list of attribute names")


def _int(value: Any, what: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise invalid_value(f"{what} must be an integer") from exc


def _selection() -> tuple[list[str] | None, list[str] | None]:
    return (
        _names(request.args.get("attributes"), "attributes"),
        _names(request.args.get("excludedAttributes"), "excludedAttributes"),
    )


def _wants_related(
    kind: ResourceKind, attributes: list[str] | None, excluded: list[str] | None
) -> bool:
    related = "members" if kind is GROUPS else "groups"
    if attributes:
        return any(a.lower().split(".")[0].endswith(related) for a in attributes)
    return not excluded or not any(e.lower() == related for e in excluded)


# --- discovery ---------------------------------------------------------------------------------


@bp.get("/ServiceProviderConfig")
def service_provider_config_view() -> Response:
    return scim_response(service_provider_config(base_url()))


class _Discoverable(Protocol):
    def to_scim(self, base_url: str) -> dict[str, Any]: ...


#: discovery entries by their id in lower case (ids and names are matched case-insensitively)
_SCHEMAS_BY_ID: dict[str, _Discoverable] = {s.id.lower(): s for s in ALL_SCHEMAS}
_KINDS_BY_NAME: dict[str, _Discoverable] = {k.name.lower(): k for k in KINDS}


@bp.get("/Schemas")
def schemas_view() -> Response:
    return _discovery_list(ALL_SCHEMAS)


@bp.get("/Schemas/<schema_id>")
def schema_view(schema_id: str) -> Response:
    return _discovery_entry(_SCHEMAS_BY_ID, schema_id, f"no schema {schema_id!r}")


@bp.get("/ResourceTypes")
def resource_types_view() -> Response:
    return _discovery_list(KINDS)


@bp.get("/ResourceTypes/<name>")
def resource_type_view(name: str) -> Response:
    return _discovery_entry(_KINDS_BY_NAME, name, f"no resource type {name!r}")


def _modes() -> frozenset[str]:
    """The modes (``sandbox.portal.modes``) switched on for this request's organisation."""
    return modes.active(current().knobs.effective(g.org.name))


def _discovery_list(entries: Iterable[_Discoverable]) -> Response:
    """``/Schemas`` and ``/ResourceTypes``: every entry in one unpaged list answer."""
    resources = modes.discovery([e.to_scim(base_url()) for e in entries], _modes())
    return scim_response(list_response(resources, len(resources), 1))


def _discovery_entry(index: dict[str, _Discoverable], wanted: str, missing: str) -> Response:
    """One schema or resource type, or 404 with the ``missing`` sentence."""
    entry = index.get(wanted.lower())
    shown = modes.discovery([entry.to_scim(base_url())], _modes()) if entry is not None else []
    if not shown:
        raise not_found(missing)
    return scim_response(shown[0])


def list_response(resources: list[Any], total: int, start_index: int) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


# --- queries -----------------------------------------------------------------------------------


@bp.get("/<any(Users, Groups):endpoint>")
def list_view(endpoint: str) -> Response:
    return scim_response(search([BY_ENDPOINT[endpoint]], dict(request.args)))


@bp.post("/<any(Users, Groups):endpoint>/.search")
def search_view(endpoint: str) -> Response:
    return scim_response(search([BY_ENDPOINT[endpoint]], _search_body()))


@bp.post("/.search")
def root_search_view() -> Response:
    return scim_response(search(list(KINDS), _search_body()))


def _search_body() -> dict[str, Any]:
    body = read_body()
    if not isinstance(body, dict):
        raise invalid_syntax("a search request is a JSON object")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or SEARCH_REQUEST not in schemas:
        raise invalid_syntax(f"a search request must have 'schemas': [{SEARCH_REQUEST!r}]")
    return body


def search(kinds: list[ResourceKind], params: dict[str, Any]) -> dict[str, Any]:
    """One page of a query over ``kinds`` (more than one only for the root ``/.search``)."""
    start_index = max(1, _int(params.get("startIndex"), "startIndex", 1))
    count = min(MAX_RESULTS, max(0, _int(params.get("count"), "count", MAX_RESULTS)))
    mode = _modes()
    if "ignore_paging" in mode:
        start_index, count = 1, MAX_RESULTS
    attributes = _names(params.get("attributes"), "attributes")
    excluded = _names(params.get("excludedAttributes"), "excludedAttributes")
    sort_by = params.get("sortBy") or None
    order = str(params.get("sortOrder") or "ascending").lower()
    if order not in ("ascending", "descending"):
        raise invalid_value("sortOrder must be ascending or descending")
    text = params.get("filter")
    node = parse(text) if isinstance(text, str) and text.strip() else None
    modes.check_filter(node, mode)
    portal, url = current(), base_url()
    total, resources, errors = 0, [], []
    offset, remaining = start_index - 1, count
    for kind in kinds:
        try:
            exact = CASE_EXACT_FILTERS.set("case_sensitive_filters" in mode)
            try:
                predicate = compile_filter(kind, node) if node is not None else None
            finally:
                CASE_EXACT_FILTERS.reset(exact)
            if sort_by is not None:
                resolve(kind, sort_by)
        except ScimError as exc:
            errors.append(exc)
            continue
        except ValueError as exc:
            errors.append(invalid_value(f"sortBy: {exc}"))
            continue
        kind_total, page = portal.scim.query(
            g.org,
            kind,
            node=node,
            predicate=predicate,
            start_index=offset + 1,
            count=remaining,
            base_url=url,
            sort_by=sort_by,
            descending=order == "descending",
            with_related=_wants_related(kind, attributes, excluded),
        )
        total += kind_total
        offset = max(0, offset - kind_total)
        remaining -= len(page)
        resources += [project(kind, s.render(url), attributes, excluded) for s in page]
    if len(errors) == len(kinds):
        raise errors[0] if node is not None else invalid_filter(str(errors[0]))
    return list_response(resources, total, start_index)


# --- single resources --------------------------------------------------------------------------


@bp.post("/<any(Users, Groups):endpoint>")
def create_view(endpoint: str) -> Response:
    kind = BY_ENDPOINT[endpoint]
    body, mode = read_body(), _modes()
    modes.check_resource(body, mode)
    doc = modes.canonical(normalise_resource(kind, body), mode)
    stored = current().scim.create(g.org, kind, doc)
    _count_write(kind, "create")
    response = _resource_response(kind, stored, 201)
    response.headers["Location"] = f"{base_url()}{kind.endpoint}/{stored.id}"
    return response


@bp.get("/<any(Users, Groups):endpoint>/<rid>")
def get_view(endpoint: str, rid: str) -> Response:
    kind = BY_ENDPOINT[endpoint]
    stored = current().scim.get(g.org, kind, rid)
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match and etag_matches(if_none_match, stored.etag):
        response = Response(status=304)
        response.headers["ETag"] = stored.etag
        return response
    return _resource_response(kind, stored)


@bp.put("/<any(Users, Groups):endpoint>/<rid>")
def replace_view(endpoint: str, rid: str) -> Response:
    kind = BY_ENDPOINT[endpoint]
    body, mode = read_body(), _modes()
    modes.check_resource(body, mode)
    doc = modes.canonical(normalise_resource(kind, body), mode)
    stored = current().scim.replace(g.org, kind, rid, doc, if_match=request.headers.get("If-Match"))
    _count_write(kind, "replace")
    return _resource_response(kind, stored)


@bp.patch("/<any(Users, Groups):endpoint>/<rid>")
def patch_view(endpoint: str, rid: str) -> Response:
    kind = BY_ENDPOINT[endpoint]
    body, mode = read_body(), _modes()
    modes.check_patch(body, mode)
    stored = current().scim.update(
        g.org,
        kind,
        rid,
        lambda doc: modes.canonical(apply_patch(kind, doc, body), mode),
        if_match=request.headers.get("If-Match"),
    )
    _count_write(kind, "patch")
    return _resource_response(kind, stored)


@bp.delete("/<any(Users, Groups):endpoint>/<rid>")
def delete_view(endpoint: str, rid: str) -> Response:
    kind = BY_ENDPOINT[endpoint]
    current().scim.delete(g.org, kind, rid, if_match=request.headers.get("If-Match"))
    _count_write(kind, "delete")
    return Response(status=204)


def _resource_response(kind: ResourceKind, stored: Any, status: int = 200) -> Response:
    attributes, excluded = _selection()
    payload = project(kind, stored.render(base_url()), attributes, excluded)
    return scim_response(payload, status, etag=stored.etag)


def _count_write(kind: ResourceKind, action: str) -> None:
    current().counters.count_write(g.org.name, f"{kind.name.lower()}.{action}")
