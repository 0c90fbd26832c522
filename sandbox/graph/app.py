"""The WSGI application: sign-in endpoints, Graph v1.0 and the admin API, behind one router.

Each Graph call is authenticated (the token picks the tenant), slowed, throttled or failed as
the knobs say, routed, counted per endpoint and status, and answered with Graph's headers
(``request-id``, ``client-request-id``, ``OData-Version: 4.0``). ``$batch`` sends each inner
request through the same path, so each is throttled and counted on its own.

Failure policy: ``GraphError`` becomes Graph's error body; any other exception is a sandbox
bug, logged and answered 500 ``generalException`` so one bad request never stops the server.

Long because the route table is one list: every Graph endpoint the sandbox serves, its method
and its handler, read in one place, next to the router that dispatches them.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.graph import (
    admin,
    auth,
    batch,
    consent,
    delegated,
    directory,
    education,
    memberof,
    subscriptions,
    urls,
)
from sandbox.graph.calls import ODATA_VERSION, GraphCall, Reply
from sandbox.graph.delta import EDUCATION_CLASSES, EDUCATION_USERS, delta, delta_of, school_delta
from sandbox.graph.errors import GraphError, error_body, new_request_id
from sandbox.graph.registry import Registry
from sandbox.graph.signin import SignIn
from sandbox.graph.store import GROUP, USER

log = logging.getLogger(__name__)

JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)
VERSION_PREFIX = "/v1.0"

Handler = Callable[..., Reply]
#: the sign-in and consent pages: (rule, endpoint, methods)
PAGES = (
    ("/<tenant>/oauth2/v2.0/authorize", "authorize", ["GET", "POST"]),
    ("/<tenant>/login", "login", ["POST"]),
    ("/<tenant>/oauth2/v2.0/logout", "logout", ["GET"]),
    ("/<tenant>/adminconsent", "adminconsent", ["GET"]),
    ("/<tenant>/v2.0/adminconsent", "adminconsent_v2", ["GET"]),
    ("/<tenant>/consent/set", "consent_set", ["POST"]),
)
PAGE_ENDPOINTS = {name: rule.replace("<tenant>", "{tenant}") for rule, name, _ in PAGES}


def _graph_rules() -> list[tuple[str, str, Handler]]:
    """(rule, methods, handler) for every Graph endpoint the sandbox serves."""
    rules: list[tuple[str, str, Handler]] = []
    for kind, name in ((USER, "users"), (GROUP, "groups")):
        rules += [
            (f"/{name}", "GET", lambda c, k=kind: directory.list_objects(c, k)),
            (f"/{name}/delta", "GET", lambda c, k=kind: delta(c, k)),
            (f"/{name}/$count", "GET", lambda c, k=kind: directory.count_objects(c, k)),
            (f"/{name}/<key>", "GET", lambda c, key, k=kind: directory.get_object(c, k, key)),
            (f"/{name}/<key>", "PATCH", lambda c, key, k=kind: directory.update_object(c, k, key)),
            (f"/{name}/<key>", "DELETE", lambda c, key, k=kind: directory.delete_object(c, k, key)),
        ]
    rules += [
        ("/users", "POST", directory.create_user),
        ("/groups", "POST", directory.create_group),
    ]
    for link, owners in (("members", False), ("owners", True)):
        for kind in (USER, GROUP):
            cast = f"/groups/<key>/{link}/microsoft.graph.{kind}"
            rules += [
                (
                    cast,
                    "GET",
                    lambda c, key, k=kind, o=owners: directory.list_links(c, key, owners=o, cast=k),
                ),
                (
                    f"{cast}/$count",
                    "GET",
                    lambda c, key, k=kind, o=owners: directory.count_links(
                        c, key, owners=o, cast=k
                    ),
                ),
            ]
        rules.append(
            (
                f"/groups/<key>/{link}/$count",
                "GET",
                lambda c, key, o=owners: directory.count_links(c, key, owners=o),
            )
        )
    for link, owners in (("members", False), ("owners", True)):
        rules += [
            (
                f"/groups/<key>/{link}",
                "GET",
                lambda c, key, o=owners: directory.list_links(c, key, owners=o),
            ),
            (
                f"/groups/<key>/{link}/$ref",
                "POST",
                lambda c, key, o=owners: directory.add_link(c, key, owners=o),
            ),
            (
                f"/groups/<key>/{link}/<target>/$ref",
                "DELETE",
                lambda c, key, target, o=owners: directory.remove_link(c, key, target, owners=o),
            ),
        ]
    for kind in (USER, GROUP):
        cast = f"/directory/deletedItems/microsoft.graph.{kind}"
        rules += [
            (cast, "GET", lambda c, k=kind: directory.list_deleted(c, k)),
            (f"{cast}/$count", "GET", lambda c, k=kind: directory.count_deleted(c, k)),
        ]
    rules += [
        ("/directory/deletedItems/<key>", "GET", directory.get_deleted),
        ("/directory/deletedItems/<key>", "DELETE", directory.purge_deleted),
        ("/directory/deletedItems/<key>/restore", "POST", directory.restore_deleted),
        ("/education/users", "GET", education.list_users),
        ("/education/users/$count", "GET", education.count_users),
        ("/education/users/delta", "GET", lambda c: delta_of(c, EDUCATION_USERS)),
        ("/education/classes/delta", "GET", lambda c: delta_of(c, EDUCATION_CLASSES)),
        ("/education/schools/delta", "GET", school_delta),
        ("/education/classes/$count", "GET", education.count_classes),
        ("/education/schools/$count", "GET", education.count_schools),
        ("/education/users/<key>", "GET", education.get_user),
        ("/education/users/<key>/classes", "GET", education.user_classes),
        ("/education/users/<key>/schools", "GET", education.user_schools),
        ("/education/classes", "GET", education.list_classes),
        ("/education/classes/<key>", "GET", education.get_class),
        (
            "/education/classes/<key>/members",
            "GET",
            lambda c, key: education.class_people(c, key, teachers=False),
        ),
        (
            "/education/classes/<key>/teachers",
            "GET",
            lambda c, key: education.class_people(c, key, teachers=True),
        ),
        ("/education/classes/<key>/schools", "GET", education.class_schools),
        ("/education/schools", "GET", education.list_schools),
        ("/education/schools/<key>", "GET", education.get_school),
        ("/education/schools/<key>/users", "GET", education.school_users),
        ("/education/schools/<key>/classes", "GET", education.school_classes),
        ("/subscriptions", "GET", subscriptions.list_all),
        ("/subscriptions", "POST", subscriptions.create),
        ("/subscriptions/<key>", "GET", subscriptions.get),
        ("/subscriptions/<key>", "PATCH", subscriptions.update),
        ("/subscriptions/<key>", "DELETE", subscriptions.delete),
        ("/subscriptions/<key>/reauthorize", "POST", subscriptions.reauthorize),
    ]
    return rules + delegated.RULES + memberof.RULES


def _label(rule: str) -> str:
    return rule.replace("<key>", "{id}").replace("<target>", "{id}")


class SandboxApp:
    """The WSGI callable of one sandbox."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.handlers: dict[str, Handler] = {}
        rules = []
        for index, (rule, method, handler) in enumerate(_graph_rules()):
            endpoint = f"{index}:{method} {VERSION_PREFIX}{_label(rule)}"
            self.handlers[endpoint] = handler
            rules.append(Rule(rule, endpoint=endpoint, methods=[method]))
        rules.append(Rule("/$batch", endpoint="batch", methods=["POST"]))
        self.graph_map = Map(rules, strict_slashes=False, merge_slashes=False)
        self.auth_map = Map(
            [
                Rule("/<tenant>/v2.0/.well-known/openid-configuration", endpoint="openid"),
                Rule("/<tenant>/discovery/v2.0/keys", endpoint="keys"),
                Rule("/<tenant>/oauth2/v2.0/token", endpoint="token", methods=["POST"]),
                *(Rule(path, endpoint=name, methods=methods) for path, name, methods in PAGES),
            ]
        )
        self.people = SignIn(registry)
        self.admin = admin.AdminApi(registry)

    # --- WSGI ----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            if request.path == VERSION_PREFIX or request.path.startswith(VERSION_PREFIX + "/"):
                response = self.graph_http(request)
            elif request.path.startswith("/_sandbox"):
                response = self.admin.handle(request)
            else:
                response = self.sign_in(request)
        except Exception:
            log.exception("sandbox bug while answering %s %s", request.method, request.path)
            rid = new_request_id()
            response = _json_response(
                500, error_body("generalException", "An internal error occurred.", rid, rid)
            )
        return response(environ, start_response)

    # --- sign-in -------------------------------------------------------------------------------

    def sign_in(self, request: Request) -> Response:
        adapter = self.auth_map.bind("sandbox")
        try:
            endpoint, args = adapter.match(request.path, method=request.method)
        except (NotFound, MethodNotAllowed):
            return _json_response(404, {"error": "not_found", "error_description": "Not found."})
        if endpoint in PAGE_ENDPOINTS:
            response = self.sign_in_page(request, endpoint, args["tenant"])
            tenant_id = getattr(self.registry.tenant_by_key(args["tenant"]), "id", "")
            label = f"{request.method} {PAGE_ENDPOINTS[endpoint]}"
            self.registry.counters.request(tenant_id, label, response.status_code)
            return response
        tenant = self.registry.tenant_by_key(args["tenant"])
        organizations = args["tenant"].lower() in ("common", "organizations")
        labels = {
            "openid": "GET /{tenant}/v2.0/.well-known/openid-configuration",
            "keys": "GET /{tenant}/discovery/v2.0/keys",
            "token": "POST /{tenant}/oauth2/v2.0/token",
        }
        if endpoint == "token":
            form = {k: v for k, v in request.form.items()}
            status, body = auth.issue_token(
                self.registry, args["tenant"], form, request.headers.get("Authorization", "")
            )
        elif tenant is None and organizations:
            authority = self.registry.settings.authority
            status, body = (
                (
                    200,
                    auth.openid_configuration(
                        authority, self.registry.settings.graph_url, args["tenant"]
                    ),
                )
                if endpoint == "openid"
                else (
                    200,
                    auth.jwks(self.registry.trust.signing_key, self.registry.trust.signing_key_id),
                )
            )
            if endpoint == "openid":
                body["issuer"] = f"{authority}/{{tenantid}}/v2.0"
        elif tenant is None:
            status, body = (
                400,
                auth.entra_error(
                    "invalid_tenant",
                    90002,
                    f"Tenant '{args['tenant']}' not found. Check to make sure you have the correct "
                    "tenant ID and are signing into the correct cloud.",
                ),
            )
        elif endpoint == "openid":
            status, body = (
                200,
                auth.openid_configuration(
                    self.registry.settings.authority, self.registry.settings.graph_url, tenant.id
                ),
            )
        else:
            status, body = (
                200,
                auth.jwks(self.registry.trust.signing_key, self.registry.trust.signing_key_id),
            )
        self.registry.counters.request(tenant.id if tenant else "", labels[endpoint], status)
        response = _json_response(status, body)
        response.headers["Cache-Control"] = "no-store, no-cache"
        return response

    def sign_in_page(self, request: Request, endpoint: str, tenant_key: str) -> Response:
        if endpoint == "authorize":
            return self.people.authorize(request, tenant_key)
        if endpoint == "login":
            return self.people.login(request, tenant_key)
        if endpoint == "logout":
            return self.people.logout(request, tenant_key)
        if endpoint == "consent_set":
            return consent.decide(self.people, request, tenant_key)
        version = "v2.0" if endpoint == "adminconsent_v2" else ""
        return consent.admin_consent(self.people, request, tenant_key, version)

    # --- Graph ---------------------------------------------------------------------------------

    def graph_http(self, request: Request) -> Response:
        rid = new_request_id()
        client_rid = request.headers.get("client-request-id", rid)
        tenant_id = ""
        try:
            tenant, claims = auth.token_claims(
                self.registry, request.headers.get("Authorization", "")
            )
            tenant_id = tenant.id
            person = claims.get("oid") if claims.get("idtyp") == "user" else None
            call = GraphCall(
                registry=self.registry,
                tenant=tenant,
                method=request.method,
                path=request.path[len(VERSION_PREFIX) :] or "/",
                args={k: v for k, v in request.args.items()},
                headers={k.lower(): v for k, v in request.headers.items()},
                body=request.get_data(),
                base_url=self.registry.settings.graph_url,
                user_id=person,
                scopes=frozenset(str(claims.get("scp", "")).split()),
            )
            latency = self.registry.knobs.effective(tenant.knobs)["latency_ms"]
            if latency:
                time.sleep(latency / 1000.0)
            reply = self.dispatch(call)
        except GraphError as exc:
            label = f"{request.method} {VERSION_PREFIX}(unauthenticated)"
            self.registry.counters.request(tenant_id, label, exc.status)
            reply = Reply(
                exc.status, error_body(exc.code, exc.message, rid, client_rid), exc.headers
            )
        response = _reply_response(reply)
        response.headers["request-id"] = rid
        response.headers["client-request-id"] = client_rid
        response.headers["OData-Version"] = ODATA_VERSION
        return response

    def dispatch(self, call: GraphCall) -> Reply:
        """Route one (possibly inner) Graph call, applying throttling knobs and counting it."""
        label = f"{call.method} {VERSION_PREFIX}{call.path}"
        try:
            call.path = urls.canonical(call.path)
            adapter = self.graph_map.bind("sandbox")
            try:
                endpoint, args = adapter.match(call.path, method=call.method)
            except MethodNotAllowed as exc:
                label = f"{call.method} {VERSION_PREFIX}(method not allowed)"
                raise GraphError(
                    405,
                    "Request_BadRequest",
                    "Specified HTTP method is not allowed for the request target.",
                ) from exc
            except NotFound as exc:
                label = f"{call.method} {VERSION_PREFIX}(unknown segment)"
                segment = call.path.rstrip("/").rsplit("/", 1)[-1]
                raise GraphError(
                    400, "BadRequest", f"Resource not found for the segment '{segment}'."
                ) from exc
            label = endpoint.split(":", 1)[1] if endpoint != "batch" else "POST /v1.0/$batch"
            delegated.check(call, label)
            if endpoint != "batch":
                self._maybe_fail(call)
                reply = self.handlers[endpoint](call, **args)
            else:
                reply = batch.batch(call, self.dispatch)
        except GraphError as exc:
            rid = new_request_id()
            reply = Reply(exc.status, error_body(exc.code, exc.message, rid, rid), exc.headers)
        self.registry.counters.request(call.tenant.id, label, reply.status)
        return reply

    def _maybe_fail(self, call: GraphCall) -> None:
        knobs = self.registry.knobs.effective(call.tenant.knobs)
        if knobs["fail_after_requests"]:
            with call.tenant.lock:
                call.tenant.calls_since_fail_knob += 1
                failing = call.tenant.calls_since_fail_knob > knobs["fail_after_requests"]
            if failing:
                raise GraphError(503, "serviceNotAvailable", "The service is not available.")
        if knobs["throttle_share"] and random.random() < knobs["throttle_share"]:
            seconds = max(0, math.ceil(knobs["retry_after_seconds"]))
            raise GraphError(
                429,
                "TooManyRequests",
                "Too many requests, please retry later.",
                headers={"Retry-After": str(seconds)},
            )
        if knobs["error_share"] and random.random() < knobs["error_share"]:
            if random.random() < 0.5:
                raise GraphError(503, "serviceNotAvailable", "The service is not available.")
            raise GraphError(500, "generalException", "An unspecified error has occurred.")


def _json_response(status: int, body: Any) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False).encode("utf-8"),
        status=status,
        content_type="application/json; charset=utf-8",
    )


def _reply_response(reply: Reply) -> Response:
    if reply.body is None:
        response = Response(b"", status=reply.status)
        response.headers.pop("Content-Type", None)
    elif isinstance(reply.body, str):
        response = Response(reply.body, status=reply.status, content_type="text/plain")
    else:
        response = Response(
            json.dumps(reply.body, ensure_ascii=False).encode("utf-8"),
            status=reply.status,
            content_type=JSON_TYPE,
        )
    for name, value in reply.headers.items():
        response.headers[name] = value
    return response
