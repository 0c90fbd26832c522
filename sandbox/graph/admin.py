"""The admin API under ``/_sandbox``: tenants, knobs, counters and fault triggers.

Every call needs ``Authorization: Bearer <admin_token>`` (from ``sandbox.json``). The routes are
listed in this package's docstring. Answers are JSON; errors are
``{"error": {"code", "message"}}`` with 400, 401 or 404.
"""

from __future__ import annotations

import hmac
import json
import time
from pathlib import Path
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.graph import roles, subscriptions
from sandbox.graph.errors import GraphError
from sandbox.graph.knobs import check_knobs
from sandbox.graph.registry import LOAD_FORMATS, Load, Registry
from sandbox.graph.store import Tenant

MAX_GENERATED_USERS = 1_000_000


def _tenant_json(tenant: Tenant, registry: Registry) -> dict[str, Any]:
    administrator = registry.identity.administrators.get(tenant.id)
    return {
        "id": tenant.id,
        "domain": tenant.domain,
        "name": tenant.name,
        "administrator": administrator,
    }


class AdminApi:
    """Handles ``/_sandbox/...``."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.map = Map(
            [
                Rule("/_sandbox", endpoint="info", methods=["GET"]),
                Rule("/_sandbox/tenants", endpoint="tenants", methods=["GET"]),
                Rule("/_sandbox/tenants", endpoint="create_tenant", methods=["POST"]),
                Rule("/_sandbox/tenants/<tid>", endpoint="tenant_info", methods=["GET"]),
                Rule("/_sandbox/knobs", endpoint="knobs", methods=["GET", "PUT"]),
                Rule(
                    "/_sandbox/tenants/<tid>/knobs", endpoint="tenant_knobs", methods=["GET", "PUT"]
                ),
                Rule("/_sandbox/counters", endpoint="counters", methods=["GET", "DELETE"]),
                Rule(
                    "/_sandbox/tenants/<tid>/expire-delta-tokens",
                    endpoint="expire",
                    methods=["POST"],
                ),
                Rule("/_sandbox/tenants/<tid>/delta-gone", endpoint="gone", methods=["POST"]),
                Rule(
                    "/_sandbox/tenants/<tid>/reauthorization-required",
                    endpoint="reauth",
                    methods=["POST"],
                ),
                Rule("/_sandbox/reset", endpoint="reset", methods=["POST"]),
                Rule(
                    "/_sandbox/tenants/<tid>/consent",
                    endpoint="consent",
                    methods=["GET", "POST", "DELETE"],
                ),
                Rule(
                    "/_sandbox/tenants/<tid>/roles/<role>/members/<user>",
                    endpoint="role_member",
                    methods=["PUT", "DELETE"],
                ),
                Rule("/_sandbox/apps/<name>/redirect-uris", endpoint="redirects", methods=["POST"]),
            ],
            strict_slashes=False,
        )

    def handle(self, request: Request) -> Response:
        try:
            self._authorize(request)
            try:
                endpoint, args = self.map.bind("sandbox").match(request.path, method=request.method)
            except NotFound as exc:
                raise GraphError(404, "notFound", f"No admin endpoint {request.path}.") from exc
            except MethodNotAllowed as exc:
                raise GraphError(405, "methodNotAllowed", "Method not allowed here.") from exc
            status, body = getattr(self, f"_{endpoint}")(request, **args)
        except GraphError as exc:
            status, body = exc.status, {"error": {"code": exc.code, "message": exc.message}}
        except ValueError as exc:
            status, body = 400, {"error": {"code": "badRequest", "message": str(exc)}}
        if body is None:
            return Response(b"", status=status)
        return Response(
            json.dumps(body, ensure_ascii=False), status=status, content_type="application/json"
        )

    def _authorize(self, request: Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expected = self.registry.trust.app.admin_token
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), expected):
            raise GraphError(401, "unauthorized", "The admin API needs the sandbox's admin token.")

    def _body(self, request: Request) -> Any:
        raw = request.get_data()
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ValueError("the body is not valid JSON") from exc

    def _find_tenant(self, tid: str) -> Tenant:
        tenant = self.registry.tenants.get(tid)
        if tenant is None:
            raise GraphError(404, "notFound", f"No tenant {tid} in this sandbox.")
        return tenant

    # --- endpoints -----------------------------------------------------------------------------

    def _info(self, request: Request) -> tuple[int, Any]:
        settings = self.registry.settings
        return 200, {
            "authority": settings.authority,
            "graph_url": settings.graph_url,
            "tenants": [_tenant_json(t, self.registry) for t in self.registry.tenants.values()],
        }

    def _tenants(self, request: Request) -> tuple[int, Any]:
        return 200, {
            "tenants": [_tenant_json(t, self.registry) for t in self.registry.tenants.values()]
        }

    def _tenant_info(self, request: Request, tid: str) -> tuple[int, Any]:
        tenant = self._find_tenant(tid)
        body = {
            **_tenant_json(tenant, self.registry),
            "domains": list(tenant.domains),
            "counts": tenant.counts(),
            "import": self._imports(tenant),
        }
        return 200, body

    def _create_tenant(self, request: Request) -> tuple[int, Any]:
        body = self._body(request)
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        unknown = set(body) - {"name", "load", "generate", "seed", "strict", "consent"}
        if unknown:
            raise ValueError(f"unknown field '{sorted(unknown)[0]}'")
        loads = []
        for entry in body.get("load") or []:
            if (
                not isinstance(entry, dict)
                or entry.get("format") not in LOAD_FORMATS
                or not isinstance(entry.get("path"), str)
            ):
                raise ValueError(
                    f'each load is {{"format": one of {", ".join(LOAD_FORMATS)}, "path": ...}}'
                )
            loads.append(Load(entry["format"], Path(entry["path"])))
        generate = body.get("generate")
        if generate is not None and (
            isinstance(generate, bool)
            or not isinstance(generate, int)
            or not 0 < generate <= MAX_GENERATED_USERS
        ):
            raise ValueError(f"generate must be a whole number from 1 to {MAX_GENERATED_USERS}")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be a whole number")
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError("name must be a non-empty string")
        strict = body.get("strict", False)
        if not isinstance(strict, bool):
            raise ValueError("strict must be true or false")
        consent = body.get("consent")
        if consent is not None and not isinstance(consent, bool):
            raise ValueError("consent must be true or false")
        tenant = self.registry.create_tenant(
            name=name,
            loads=tuple(loads),
            generate=generate,
            seed=seed,
            strict=strict,
            consent=consent,
        )
        return 201, {**_tenant_json(tenant, self.registry), "import": self._imports(tenant)}

    def _imports(self, tenant: Tenant) -> list[dict[str, Any]]:
        return [r.as_json() for r in self.registry.import_reports.get(tenant.id, [])]

    def _knobs(self, request: Request) -> tuple[int, Any]:
        if request.method == "PUT":
            values = check_knobs(self._body(request))
            self.registry.knobs.set(values)
            if "fail_after_requests" in values:
                for tenant in self.registry.tenants.values():
                    tenant.calls_since_fail_knob = 0
        return 200, self.registry.knobs.effective()

    def _tenant_knobs(self, request: Request, tid: str) -> tuple[int, Any]:
        tenant = self._find_tenant(tid)
        if request.method == "PUT":
            values = check_knobs(self._body(request))
            tenant.knobs.update(values)
            if "fail_after_requests" in values:
                tenant.calls_since_fail_knob = 0
        return 200, self.registry.knobs.effective(tenant.knobs)

    def _counters(self, request: Request) -> tuple[int, Any]:
        if request.method == "DELETE":
            self.registry.counters.reset()
            return 204, None
        return 200, self.registry.counters.snapshot()

    def _expire(self, request: Request, tid: str) -> tuple[int, Any]:
        self._find_tenant(tid).tokens_valid_after = time.time()
        return 204, None

    def _gone(self, request: Request, tid: str) -> tuple[int, Any]:
        self._find_tenant(tid).delta_gone = True
        return 204, None

    def _reauth(self, request: Request, tid: str) -> tuple[int, Any]:
        sent = subscriptions.send_lifecycle(
            self.registry, self._find_tenant(tid), "reauthorizationRequired"
        )
        return 202, {"sent": sent}

    def _app_client_id(self, request: Request) -> str:
        name = self._body(request).get("app", "skolsynk") if request.method != "GET" else "skolsynk"
        app = self.registry.identity.apps.get(str(name))
        if app is None:
            raise ValueError(f"no app '{name}'")
        return app.client_id

    def _consent(self, request: Request, tid: str) -> tuple[int, Any]:
        """GET: which apps are consented; POST grants, DELETE revokes (body ``{"app"}``)."""
        tenant = self._find_tenant(tid)
        identity = self.registry.identity
        if request.method == "POST":
            identity.grant_consent(tenant.id, self._app_client_id(request))
        elif request.method == "DELETE":
            identity.revoke_consent(tenant.id, self._app_client_id(request))
        consented = [
            a.name for a in identity.apps.values() if identity.consented(tenant.id, a.client_id)
        ]
        return 200, {"consented": consented}

    def _role_member(self, request: Request, tid: str, role: str, user: str) -> tuple[int, Any]:
        """Give (PUT) or take (DELETE) a directory role (template id) to a user (id or UPN)."""
        tenant = self._find_tenant(tid)
        if role not in roles.TEMPLATES:
            raise GraphError(404, "notFound", f"No directory role template {role}.")
        person = tenant.find("user", user)
        if person is None:
            raise GraphError(404, "notFound", f"No user {user} in tenant {tid}.")
        if request.method == "PUT":
            roles.assign(self.registry.identity, tenant, role, person.id)
        else:
            roles.unassign(self.registry.identity, tenant, role, person.id)
        return 200, {"roles": roles.roles_of(self.registry.identity, tenant, person.id)}

    def _redirects(self, request: Request, name: str) -> tuple[int, Any]:
        body = self._body(request)
        uri = body.get("uri") if isinstance(body, dict) else None
        if not isinstance(uri, str):
            raise ValueError('the body is {"uri": "https://..."}')
        app = self.registry.identity.register_redirect(name, uri)
        return 200, {"name": app.name, "redirect_uris": list(app.redirect_uris)}

    def _reset(self, request: Request) -> tuple[int, Any]:
        self.registry.knobs.reset()
        for tenant in self.registry.tenants.values():
            tenant.knobs.clear()
            tenant.delta_gone = False
            tenant.calls_since_fail_knob = 0
        return 204, None
