"""``ScimWire``: the HTTP requests to one SCIM root, and the translation of their answers.

Owns URLs, headers (the bearer token), sending through the ``Transport``, reading JSON answers
(top-level names in any letter case), versions from ETags, the resource a POST made, PATCH with
re-reads on 412, paging of listings (``startIndex``/``count``, with a server that ignores them
detected), discovery reads, and SCIM error bodies. ``ScimPortal`` builds on it.

Failure policy: see ``common.portal.client``; nothing of a body or a token goes into a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests

from common.config import Secret
from common.errors import (
    ConflictError,
    NotFound,
    PortalAuthError,
    PortalRequestError,
    TransientError,
)
from common.http import Transport
from common.portal.codec import field_of
from common.portal.scim import PATCH_OP, SCIM_MEDIA_TYPE

#: page size when the server does not say its maximum (ServiceProviderConfig filter.maxResults)
DEFAULT_PAGE_SIZE = 100
#: never ask for more than this per page, whatever the server allows
MAX_PAGE_SIZE = 1000
#: times a conditional update is re-read and retried after 412 before ``ConflictError``
PRECONDITION_RETRIES = 3

_ACCEPT = f"{SCIM_MEDIA_TYPE}, application/json"
_TOP_NAMES = {
    n.lower(): n
    for n in ("Resources", "totalResults", "itemsPerPage", "startIndex", "id", "meta", "schemas")
}
_DETAIL_MAX_CHARS = 300


class ScimWire:
    """Requests to the SCIM root ``base_url`` with ``token``, through ``transport``."""

    def __init__(self, transport: Transport, base_url: str, token: Secret | str) -> None:
        self.transport = transport
        self.base_url = base_url.rstrip("/")
        self._token = token if isinstance(token, Secret) else Secret(token)
        #: (endpoint, externalId) of creates whose answer was lost (the sync checks them for a
        #: second copy once its creates are done: a lookup may miss what was just written)
        self.uncertain_creates: list[tuple[str, str]] = []

    def page_size(self) -> int:
        """How many resources to ask for per page (subclasses ask the server)."""
        return DEFAULT_PAGE_SIZE

    def _discovery_read(self, endpoint: str) -> Mapping[str, Any] | None:
        """One discovery endpoint's JSON object, ``None`` when the server has none.

        Missing (404, 501, any 4xx) or not JSON is ``None``; 401/403 and unavailability raise.
        """
        what = f"reading /{endpoint}"
        response = self.transport.request("GET", self._url(endpoint), headers=self._headers())
        status = response.status_code
        if status in (401, 403):
            raise PortalAuthError(f"the portal refused our token ({status}) while {what}")
        if status >= 300:
            return None
        try:
            data = response.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    # --- HTTP -------------------------------------------------------------------------------

    def _url(self, endpoint: str, portal_id: str | None = None) -> str:
        if portal_id is None:
            return f"{self.base_url}/{endpoint}"
        return f"{self.base_url}/{endpoint}/{quote(portal_id, safe='')}"

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self._token.reveal()}",
            "Accept": _ACCEPT,
            "Content-Type": SCIM_MEDIA_TYPE,
        }
        headers.update(extra or {})
        return headers

    def _send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        conflict: str | None = None,
        missing_ok: bool = False,
        precondition_ok: bool = False,
    ) -> requests.Response:
        """Send one request (the transport retries) and translate a refusal into our errors."""
        # our PATCHes hold absolute values and set operations on members: safe to send twice
        response = self.transport.request(
            method,
            url,
            json=body,
            params=params,
            headers=self._headers(headers),
            idempotent=True if method == "PATCH" else None,
        )
        status = response.status_code
        if status < 300:
            return response
        if (status == 404 and missing_ok) or (status == 412 and precondition_ok):
            return response
        detail, scim_type = _error_of(response)
        if status in (401, 403):
            raise PortalAuthError(
                f"the portal refused our token ({status}) while {what}"
                + (f": {detail}" if detail else "")
            )
        if status == 404:
            raise NotFound(f"not found in the portal while {what}", status=404, code=scim_type)
        if status in (409, 412):
            message = conflict or f"the portal reported a conflict while {what}"
            raise ConflictError(
                f"{message} ({status}{', ' + scim_type if scim_type else ''})",
                status=status,
                code=scim_type,
            )
        raise PortalRequestError(
            f"the portal refused {what} ({status}{', ' + scim_type if scim_type else ''})"
            + (f": {detail}" if detail else ""),
            status=status,
            code=scim_type,
        )

    def _json(self, response: requests.Response, what: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise PortalRequestError(
                f"the portal answered {what} with something that is not JSON",
                status=response.status_code,
            ) from exc
        if not isinstance(data, dict):
            raise PortalRequestError(
                f"the portal answered {what} with JSON that is not an object",
                status=response.status_code,
            )
        # top-level names only: resources are read case-insensitively when they are parsed
        return {_TOP_NAMES.get(str(k).lower(), str(k)): v for k, v in data.items()}

    def _get(self, endpoint: str, portal_id: str) -> dict[str, Any]:
        return self._read(
            self._url(endpoint, portal_id), f"reading {endpoint[:-1].lower()} {portal_id}"
        )

    def _read(self, url: str, what: str) -> dict[str, Any]:
        """GET one resource, versioned by its ETag where the body says no version."""
        response = self._send("GET", url, what=what)
        return self._with_version(self._json(response, what), response)

    @staticmethod
    def _with_version(resource: dict[str, Any], response: requests.Response) -> dict[str, Any]:
        """Fill meta.version from the ETag header when the body lacks it."""
        etag = response.headers.get("ETag")
        meta = resource.get("meta")
        if etag and not (isinstance(meta, dict) and meta.get("version")):
            resource["meta"] = {**(meta if isinstance(meta, dict) else {}), "version": etag}
        return resource

    def _created(self, response: requests.Response, endpoint: str) -> dict[str, Any]:
        """The resource a POST created: its body, or what its Location points at."""
        if response.content:
            body = self._json(response, f"creating a {endpoint[:-1].lower()}")
            if body.get("id"):
                return self._with_version(body, response)
        location = response.headers.get("Location")
        if not location:
            raise PortalRequestError(
                f"the portal created a {endpoint[:-1].lower()} but did not say where",
                status=response.status_code,
            )
        return self._read(location, f"reading the new {endpoint[:-1].lower()}")

    def _patch(
        self,
        endpoint: str,
        portal_id: str,
        operations: list[dict[str, Any]],
        *,
        version: str | None,
        conflict: str | None = None,
    ) -> dict[str, Any]:
        """PATCH, re-reading and retrying on 412; return the resource after the change."""
        patch = {"schemas": [PATCH_OP], "Operations": operations}
        what = f"updating {endpoint[:-1].lower()} {portal_id}"
        for attempt in range(PRECONDITION_RETRIES + 1):
            headers = {"If-Match": version} if version else None
            response = self._send(
                "PATCH",
                self._url(endpoint, portal_id),
                body=patch,
                headers=headers,
                what=what,
                conflict=conflict,
                precondition_ok=attempt < PRECONDITION_RETRIES,
            )
            if response.status_code == 412:
                # changed by someone else since we read it: our values are absolute, so
                # applying them to the current version is still right
                version = self._get(endpoint, portal_id).get("meta", {}).get("version")
                continue
            if response.status_code == 200 and response.content:
                resource = self._json(response, what)
                if resource.get("id"):
                    return self._with_version(resource, response)
            # 204, or 200 without the resource: read it back
            return self._get(endpoint, portal_id)
        raise AssertionError("unreachable: the last attempt raises on 412")

    def _patch_members(self, group_id: str, operations: list[dict[str, Any]]) -> None:
        self._send(
            "PATCH",
            self._url("Groups", group_id),
            body={"schemas": [PATCH_OP], "Operations": operations},
            what=f"changing the members of group {group_id}",
        )

    def _delete(self, endpoint: str, portal_id: str) -> None:
        self._send(
            "DELETE",
            self._url(endpoint, portal_id),
            what=f"deleting {endpoint[:-1].lower()} {portal_id}",
            missing_ok=True,
        )

    def _create(
        self,
        endpoint: str,
        resource: dict[str, Any],
        made: Callable[[], Any],
        *,
        conflict: str,
        lookup: bool,
    ) -> Any:
        """POST ``resource``; after a lost answer, return what ``made()`` finds, else POST again.

        Bounded by the transport's attempts; without a key to look up by (``lookup`` false) a
        lost answer is raised as it came.
        """
        what = f"creating a {endpoint[:-1].lower()}"
        attempts = max(1, self.transport.policy.attempts)
        for attempt in range(1, attempts + 1):
            try:
                response = self._send(
                    "POST", self._url(endpoint), body=resource, what=what, conflict=conflict
                )
            except TransientError as exc:
                if not exc.maybe_applied or not lookup or attempt == attempts:
                    raise
                self.uncertain_creates.append((endpoint, str(resource.get("externalId") or "")))
                existing = made()
                if existing is not None:
                    return existing
                self.transport.sleep(self.transport.policy.backoff(attempt))
                continue
            return self._created(response, endpoint)
        raise AssertionError("unreachable: the last attempt raises")

    def read_page(
        self, endpoint: str, *, filter: str | None = None, start: int = 1, count: int = 1
    ) -> dict[str, Any]:
        """One page of a listing as the server sent it (a ``PortalRequestError`` unless it is a
        SCIM ListResponse)."""
        params: dict[str, Any] = {"startIndex": start, "count": count}
        if filter is not None:
            params["filter"] = filter
        what = f"listing {endpoint.lower()}"
        page = self._json(self._send("GET", self._url(endpoint), params=params, what=what), what)
        if not isinstance(page.get("Resources", []), list) or (
            "Resources" not in page and "totalResults" not in page
        ):
            raise PortalRequestError(f"the portal answered {what} with no SCIM list of resources")
        return page

    def _list(self, endpoint: str, query: str | None = None) -> Iterator[dict[str, Any]]:
        """Every resource of a listing, following startIndex/count (RFC 7644 §3.4.2.4).

        A resource seen on an earlier page is not yielded twice. A server that ignores
        ``startIndex`` (the same page again, or pages that stop short of ``totalResults``) cannot
        be read whole: that raises ``PortalRequestError`` naming the server's fault, so that
        nothing is planned from a partial listing.
        """
        size = self.page_size()
        start = 1
        seen: set[str] = set()
        what = f"listing {endpoint.lower()}"
        while True:
            params: dict[str, Any] = {"startIndex": start, "count": size}
            if query is not None:
                params["filter"] = query
            response = self._send("GET", self._url(endpoint), params=params, what=what)
            page = self._json(response, what)
            resources = page.get("Resources") or []
            if not isinstance(resources, list):
                raise PortalRequestError(f"the portal answered {what} without a list of resources")
            new = 0
            for resource in resources:
                key = str(resource.get("id")) if isinstance(resource, dict) else ""
                if key in seen:
                    continue
                seen.add(key)
                new += 1
                yield resource
            raw_total = page.get("totalResults")
            total = (
                raw_total
                if isinstance(raw_total, int) and not isinstance(raw_total, bool)
                else None
            )
            if total is not None and len(seen) >= total:
                return
            if not resources or not new:
                if total is not None and len(seen) < total:
                    raise PortalRequestError(
                        f"the portal's {what} is incomplete: it says {total} but pages past "
                        f"{len(seen)} bring nothing new (the SCIM server ignores startIndex); "
                        f"nothing is planned from a partial listing"
                    )
                return
            if total is None and len(resources) < size:
                return
            start += len(resources)


def _error_of(response: requests.Response) -> tuple[str, str | None]:
    """The SCIM error ``detail`` (shortened) and ``scimType`` of a refusal, if it has them."""
    try:
        data = response.json()
    except ValueError:
        return "", None
    if not isinstance(data, dict):
        return "", None
    detail = str(field_of(data, "detail") or "")[:_DETAIL_MAX_CHARS]
    scim_type = field_of(data, "scimType")
    return detail, str(scim_type) if scim_type else None
