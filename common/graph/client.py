"""Microsoft Graph for one tenant: reads, paging, JSON batching, delta, subscriptions, writes.

Failure policy: an error answer raises what ``common.graph.answers.translate`` makes of it
(``GraphAuthError``, ``NotFound``, ``DeltaExpired``, ``GraphRequestError`` with Graph's code and
message, never the payload); a 401 first forgets the token and retries once. 429, 5xx and
network failures are retried by the ``Transport`` (the one retry layer); answers inside a
``$batch`` are retried by ``common.graph.batch.Batcher`` with the transport's own decision.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import requests

from common.config import Secret
from common.graph.answers import describe, json_body, page_items, translate
from common.graph.schemas import SUBSCRIPTIONS, GraphDataError, Subscription
from common.http import IDEMPOTENT_METHODS, Transport

#: Graph takes at most this many requests in one ``$batch``
BATCH_LIMIT = 20
#: the largest page size directory listings accept
MAX_PAGE_SIZE = 999
_QUERY_SAFE = "$,()'/:@*"

Params = Mapping[str, str | int]
#: one answer inside a batch: status, headers, body (``None`` when there is none)
BatchAnswer = tuple[int, Mapping[str, str], Any]


class TokenProvider(Protocol):
    """Where the client gets its bearer tokens (``common.graph.auth.MsalTokenProvider``)."""

    def token(self, tenant_id: str) -> str: ...

    def invalidate(self, tenant_id: str) -> None: ...


@dataclass(frozen=True)
class DeltaItem:
    """One object's net change in a delta round, merged across pages.

    ``removed`` is ``None`` for a created or changed object, ``"changed"`` when it went to the
    recycle bin (restorable) and ``"deleted"`` when it is gone for good. ``members_added`` and
    ``members_removed`` come from ``members@delta`` (last word per member wins).
    """

    id: str
    removed: str | None
    properties: Mapping[str, Any]
    members_added: frozenset[str] = frozenset()
    members_removed: frozenset[str] = frozenset()


def query_string(params: Params | None) -> str:
    """OData query options as Graph reads them (``$`` kept, spaces as ``%20``)."""
    if not params:
        return ""
    return "&".join(f"{k}={quote(str(v), safe=_QUERY_SAFE)}" for k, v in params.items())


def graph_time(moment: datetime) -> str:
    """A timestamp as Graph writes them: UTC, ``Z``, no fractions."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GraphClient:
    """Graph for one tenant over a ``Transport``; see the module docstring for failures.

    The client adds its counting to the transport's ``on_response`` hook (keeping a hook that
    was there). ``request_count`` counts HTTP answers (retries and ``$batch`` calls included,
    each batch once) and ``status_counts`` them by status (0 when no answer came);
    ``inner_request_count`` and ``inner_status_counts`` do the same for the requests inside
    batches. ``graph_requests`` counts as Graph's throttling does: each request inside a batch,
    and each outside one.
    """

    def __init__(
        self, transport: Transport, tokens: TokenProvider, base_url: str, tenant_id: str
    ) -> None:
        self.transport = transport
        self.tokens = tokens
        self.base_url = base_url.rstrip("/")
        self.tenant_id = tenant_id
        self.request_count = 0
        self.inner_request_count = 0
        self.batch_count = 0
        self.status_counts: Counter[int] = Counter()
        self.inner_status_counts: Counter[int] = Counter()
        self._count_lock = threading.Lock()
        base = urlsplit(self.base_url)
        self._origin = f"{base.scheme}://{base.netloc}"
        previous = transport.on_response

        def observe(method: str, status: int, seconds: float) -> None:
            with self._count_lock:
                self.request_count += 1
                self.status_counts[status] += 1
            if previous is not None:
                previous(method, status, seconds)

        transport.on_response = observe

    @property
    def graph_requests(self) -> int:
        """Requests as Graph's throttling counts them (``$batch`` envelopes not included)."""
        with self._count_lock:
            return self.request_count - self.batch_count + self.inner_request_count

    # --- reads -----------------------------------------------------------------------------------

    def get(self, path_or_url: str, params: Params | None = None) -> dict[str, Any]:
        """The JSON body of a GET."""
        return self._json("GET", path_or_url, params=params)

    def iter_pages(self, path: str, params: Params | None = None) -> Iterator[dict[str, Any]]:
        """Each page of a collection, following ``@odata.nextLink`` to the end."""
        page = self.get(path, params)
        while True:
            yield page
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            page = self.get(str(next_link))

    def list_all(self, path: str, params: Params | None = None) -> list[dict[str, Any]]:
        """Every item of a collection, all pages read."""
        items: list[dict[str, Any]] = []
        for page in self.iter_pages(path, params):
            items.extend(page_items(page, path))
        return items

    # --- batches ---------------------------------------------------------------------------------

    def send_batch(self, requests_: Sequence[tuple[str, str, str]]) -> dict[str, BatchAnswer]:
        """One ``$batch`` call of at most 20 requests, inner answers as they came, by id."""
        if len(requests_) > BATCH_LIMIT:
            raise ValueError(f"a $batch takes at most {BATCH_LIMIT} requests")
        body = {
            "requests": [
                {"id": request_id, "method": method, "url": self.relative(url)}
                for request_id, method, url in requests_
            ]
        }
        with self._count_lock:
            self.inner_request_count += len(requests_)
            self.batch_count += 1
        # a $batch of reads may be sent again: only the inner methods can write
        reads_only = all(method.upper() in IDEMPOTENT_METHODS for _, method, _ in requests_)
        answer = self._json("POST", "/$batch", json=body, idempotent=reads_only)
        responses = answer.get("responses")
        if not isinstance(responses, list):
            raise GraphDataError("Microsoft Graph answered a $batch without responses.")
        results: dict[str, BatchAnswer] = {}
        statuses: Counter[int] = Counter()
        for item in responses:
            if not isinstance(item, Mapping) or not isinstance(item.get("status"), int):
                raise GraphDataError("Microsoft Graph answered a $batch with a malformed response.")
            headers = item.get("headers")
            headers = headers if isinstance(headers, Mapping) else {}
            results[str(item.get("id"))] = (
                int(item["status"]),
                {str(k).lower(): str(v) for k, v in headers.items()},
                item.get("body"),
            )
            statuses[int(item["status"])] += 1
        with self._count_lock:
            self.inner_status_counts.update(statuses)
        return results

    # --- delta -----------------------------------------------------------------------------------

    def delta(
        self, path: str, params_or_delta_link: Params | str | None = None
    ) -> tuple[list[DeltaItem], str]:
        """One delta round: every changed object (merged by id across pages) and the next link.

        ``params_or_delta_link`` is the query of a first round (no ``$top``, no ``$expand``) or
        the ``@odata.deltaLink`` of the last one. Raises ``DeltaExpired`` when the link is no
        longer valid.
        """
        if isinstance(params_or_delta_link, str):
            url, params = params_or_delta_link, None
        else:
            url, params = path, params_or_delta_link
        merged: dict[str, _DeltaMerge] = {}
        while True:
            page = self._json("GET", url, params=params, delta=True)
            for raw in page_items(page, path):
                object_id = raw.get("id")
                if not isinstance(object_id, str):
                    raise GraphDataError("Microsoft Graph answered a delta item without an id.")
                merged.setdefault(object_id, _DeltaMerge(object_id)).add(raw)
            next_link = page.get("@odata.nextLink")
            if next_link:
                url, params = str(next_link), None
                continue
            delta_link = page.get("@odata.deltaLink")
            if not delta_link:
                raise GraphDataError("Microsoft Graph ended a delta round without a deltaLink.")
            return [m.freeze() for m in merged.values()], str(delta_link)

    # --- subscriptions ---------------------------------------------------------------------------

    def create_subscription(  # noqa: PLR0917 (the positional order of common.state.subscriptions)
        self,
        resource: str,
        change_type: str,
        notification_url: str,
        lifecycle_url: str | None,
        expiration: datetime,
        client_state: Secret | str,
    ) -> dict[str, Any]:
        """Subscribe to changes; Graph validates the notification URL before it answers.

        Returns Graph's subscription object (checked against ``SubscriptionSchema``; keys as
        Graph spells them, ``clientState`` removed).
        """
        state = client_state.reveal() if isinstance(client_state, Secret) else client_state
        body: dict[str, Any] = {
            "changeType": change_type,
            "notificationUrl": notification_url,
            "resource": resource,
            "expirationDateTime": graph_time(expiration),
            "clientState": state,
        }
        if lifecycle_url:
            body["lifecycleNotificationUrl"] = lifecycle_url
        return _subscription(self._json("POST", "/subscriptions", json=body))

    def renew_subscription(self, subscription_id: str, expiration: datetime) -> dict[str, Any]:
        """Move a subscription's expiry; ``NotFound`` when Graph no longer has it."""
        body = {"expirationDateTime": graph_time(expiration)}
        return _subscription(
            self._json(
                "PATCH", f"/subscriptions/{quote(subscription_id)}", json=body, idempotent=True
            )
        )

    def delete_subscription(self, subscription_id: str) -> None:
        """Remove a subscription; ``NotFound`` when Graph no longer has it."""
        self._json("DELETE", f"/subscriptions/{quote(subscription_id)}")

    def list_subscriptions(self) -> list[dict[str, Any]]:
        """The application's subscriptions in this tenant (as ``create_subscription`` returns)."""
        return [_subscription(item) for item in self.list_all("/subscriptions")]

    def subscriptions(self) -> list[Subscription]:
        """The application's subscriptions in this tenant, typed."""
        return SUBSCRIPTIONS.many(self.list_all("/subscriptions"))

    # --- writes ----------------------------------------------------------------------------------

    def post(self, path: str, json: Any = None) -> dict[str, Any]:
        return self._json("POST", path, json=json)

    def patch(self, path: str, json: Any) -> dict[str, Any]:
        return self._json("PATCH", path, json=json)

    def delete(self, path: str) -> None:
        self._json("DELETE", path)

    # --- plumbing --------------------------------------------------------------------------------

    def url(self, path_or_url: str, params: Params | None = None) -> str:
        """An absolute Graph URL; refuses one on another host (our token goes with it)."""
        if path_or_url.startswith(("https://", "http://")):
            parts = urlsplit(path_or_url)
            if f"{parts.scheme}://{parts.netloc}" != self._origin:
                raise GraphDataError("Microsoft Graph pointed to a link on another host.")
            url = path_or_url
        else:
            url = self.base_url + "/" + path_or_url.lstrip("/")
        query = query_string(params)
        if query:
            url += ("&" if "?" in url else "?") + query
        return url

    def relative(self, path_or_url: str) -> str:
        """A URL as a ``$batch`` request names it: relative to the version root."""
        if path_or_url.startswith(self.base_url + "/"):
            return path_or_url[len(self.base_url) :]
        if path_or_url.startswith(("https://", "http://")):
            raise GraphDataError("Microsoft Graph pointed to a link outside its version root.")
        return "/" + path_or_url.lstrip("/")

    def _json(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Params | None = None,
        json: Any = None,
        delta: bool = False,
        idempotent: bool | None = None,
    ) -> dict[str, Any]:
        url = self.url(path_or_url, params)
        what = describe(method, url)
        response = self._send(method, url, json=json, idempotent=idempotent)
        try:
            status = response.status_code
            if status >= 400:
                raise translate(status, json_body(response), what, self.tenant_id, delta=delta)
            if status == 204 or not response.content:
                return {}
            body = json_body(response)
            if not isinstance(body, dict):
                raise GraphDataError(f"Microsoft Graph answered {what} with no JSON object.")
            return body
        finally:
            response.close()

    def _send(
        self, method: str, url: str, *, json: Any = None, idempotent: bool | None = None
    ) -> requests.Response:
        for attempt in (1, 2):
            headers = {
                "Authorization": f"Bearer {self.tokens.token(self.tenant_id)}",
                "Accept": "application/json",
            }
            response = self.transport.request(
                method, url, headers=headers, json=json, idempotent=idempotent
            )
            if response.status_code == 401 and attempt == 1:
                # a token revoked or rotated early: one fresh token, then give up
                response.close()
                self.tokens.invalidate(self.tenant_id)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class _DeltaMerge:
    id: str
    removed: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    members: dict[str, bool] = field(default_factory=dict)

    def add(self, raw: Mapping[str, Any]) -> None:
        changes = {
            k: v
            for k, v in raw.items()
            if k not in ("id", "@removed", "members@delta") and not k.startswith("@odata.")
        }
        if "@removed" in raw:
            reason = raw["@removed"].get("reason") if isinstance(raw["@removed"], Mapping) else None
            self.removed = str(reason or "deleted")
        elif changes:
            self.removed = None
        self.properties.update(changes)
        for member in raw.get("members@delta") or ():
            if isinstance(member, Mapping) and isinstance(member.get("id"), str):
                self.members[member["id"]] = "@removed" not in member

    def freeze(self) -> DeltaItem:
        return DeltaItem(
            self.id,
            self.removed,
            dict(self.properties),
            frozenset(m for m, present in self.members.items() if present),
            frozenset(m for m, present in self.members.items() if not present),
        )


def _subscription(raw: Mapping[str, Any]) -> dict[str, Any]:
    SUBSCRIPTIONS.one(raw)  # raises GraphDataError when a property we rely on is missing
    return {k: v for k, v in raw.items() if k != "clientState"}
