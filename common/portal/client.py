"""The portal, seen through SCIM 2.0 (RFC 7643/7644): the ``Portal`` seam and ``ScimPortal``.

``Portal`` is the few methods the engine and the applier depend on; ``ScimPortal`` implements it
for any server that keeps the RFC, with the school extension of
``common.portal.scim``. Attribute names
in ``changes`` and ``attrs`` are those of ``common.model.Action``; this module alone knows how
they look in SCIM.

Failure policy: 429, 5xx, timeouts and connection errors are retried by the ``Transport`` (the
one retry layer) and end as ``Throttled``/``PortalUnavailable``. A 412 on a conditional update
re-reads the resource and tries again a few times, then raises ``ConflictError``; a 409 raises
``ConflictError``; 401/403 raise ``PortalAuthError``; 404 raises ``NotFound`` except on delete,
where the object is already gone; any other 4xx raises ``PortalRequestError`` with the server's
SCIM ``detail`` and ``scimType``. Bodies and tokens never go into messages or logs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any, Protocol
from urllib.parse import quote

import requests
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load

from common.config import Secret
from common.errors import (
    ConflictError,
    NotFound,
    PortalAuthError,
    PortalRequestError,
    TransientError,
)
from common.http import Transport
from common.model import PortalGroup, PortalUser, Role
from common.portal.scim import (
    GROUP_SCHEMA,
    PATCH_OP,
    SCHOOL_GROUP_SCHEMA,
    SCHOOL_USER_SCHEMA,
    SCIM_MEDIA_TYPE,
    USER_SCHEMA,
)

#: page size when the server does not say its maximum (ServiceProviderConfig filter.maxResults)
DEFAULT_PAGE_SIZE = 100
#: never ask for more than this per page, whatever the server allows
MAX_PAGE_SIZE = 1000
#: values combined with ``or`` in one filter (keeps URLs short)
FILTER_VALUES_PER_QUERY = 10
#: members added or removed per PATCH request
MEMBERS_PER_PATCH = 100
#: times a conditional update is re-read and retried after 412 before ``ConflictError``
PRECONDITION_RETRIES = 3

_ACCEPT = f"{SCIM_MEDIA_TYPE}, application/json"
_DETAIL_MAX_CHARS = 300


class Portal(Protocol):
    """What the sync needs from a portal (the seam the engine and the applier depend on)."""

    def list_users(self) -> Iterator[PortalUser]: ...

    def list_groups(self) -> Iterator[PortalGroup]: ...

    def find_users(
        self, *, external_ids: Iterable[str] = (), emails: Iterable[str] = ()
    ) -> list[PortalUser]: ...

    def find_group(self, external_id: str) -> PortalGroup | None: ...

    def get_user(self, portal_id: str) -> PortalUser: ...

    def get_group(self, portal_id: str) -> PortalGroup: ...

    def create_user(self, attrs: Mapping[str, Any]) -> PortalUser: ...

    def update_user(
        self, portal_id: str, changes: Mapping[str, Any], *, version: str | None = None
    ) -> PortalUser: ...

    def delete_user(self, portal_id: str) -> None: ...

    def create_group(self, attrs: Mapping[str, Any]) -> PortalGroup: ...

    def update_group(
        self, portal_id: str, changes: Mapping[str, Any], *, version: str | None = None
    ) -> PortalGroup: ...

    def add_members(self, group_id: str, portal_user_ids: Sequence[str]) -> None: ...

    def remove_members(self, group_id: str, portal_user_ids: Sequence[str]) -> None: ...

    def delete_group(self, group_id: str) -> None: ...


# --- SCIM resources -> domain model (marshmallow at this boundary) -----------------------------


class _Tolerant(Schema):
    class Meta:
        unknown = EXCLUDE


class _NameSchema(_Tolerant):
    givenName = fields.String(allow_none=True)
    familyName = fields.String(allow_none=True)


class _EmailSchema(_Tolerant):
    value = fields.String(allow_none=True)
    type = fields.String(allow_none=True)
    primary = fields.Boolean(allow_none=True)


class _MetaSchema(_Tolerant):
    version = fields.String(allow_none=True)


class _MemberSchema(_Tolerant):
    value = fields.String(required=True)


class _SchoolUserSchema(_Tolerant):
    role = fields.String(allow_none=True)
    schools = fields.Raw(allow_none=True)
    grade = fields.Raw(allow_none=True)


class _SchoolGroupSchema(_Tolerant):
    school = fields.Raw(allow_none=True)


class _UserSchema(_Tolerant):
    id = fields.String(required=True)
    userName = fields.String(required=True)
    externalId = fields.String(allow_none=True)
    name = fields.Nested(_NameSchema, allow_none=True)
    displayName = fields.String(allow_none=True)
    active = fields.Boolean(allow_none=True)
    emails = fields.List(fields.Nested(_EmailSchema), allow_none=True)
    meta = fields.Nested(_MetaSchema, allow_none=True)
    school = fields.Nested(_SchoolUserSchema, data_key=SCHOOL_USER_SCHEMA, allow_none=True)

    @post_load
    def to_user(self, data: dict[str, Any], **_: Any) -> PortalUser:
        name = data.get("name") or {}
        school = data.get("school") or {}
        return PortalUser(
            id=data["id"],
            user_name=data["userName"],
            external_id=data.get("externalId") or None,
            email=_primary_email(data.get("emails") or []),
            given_name=name.get("givenName"),
            family_name=name.get("familyName"),
            display_name=data.get("displayName"),
            # an account without the attribute is not disabled
            active=data.get("active") is not False,
            role=_role(school.get("role")),
            school_ids=_strings(school.get("schools")),
            grade=_optional_string(school.get("grade")),
            version=(data.get("meta") or {}).get("version"),
        )


class _GroupSchema(_Tolerant):
    id = fields.String(required=True)
    displayName = fields.String(allow_none=True)
    externalId = fields.String(allow_none=True)
    members = fields.List(fields.Nested(_MemberSchema), allow_none=True)
    meta = fields.Nested(_MetaSchema, allow_none=True)
    school = fields.Nested(_SchoolGroupSchema, data_key=SCHOOL_GROUP_SCHEMA, allow_none=True)

    @post_load
    def to_group(self, data: dict[str, Any], **_: Any) -> PortalGroup:
        school = data.get("school") or {}
        return PortalGroup(
            id=data["id"],
            display_name=data.get("displayName") or "",
            external_id=data.get("externalId") or None,
            member_ids=frozenset(m["value"] for m in data.get("members") or ()),
            school_id=_optional_string(school.get("school")),
            version=(data.get("meta") or {}).get("version"),
        )


_USER_SCHEMA = _UserSchema()
_GROUP_SCHEMA = _GroupSchema()

#: attribute names we read, so that names in another letter case still match (RFC 7643 §2.1)
_READ_NAMES = (
    "id",
    "userName",
    "externalId",
    "name",
    "givenName",
    "familyName",
    "displayName",
    "active",
    "emails",
    "value",
    "type",
    "primary",
    "meta",
    "version",
    "members",
    "role",
    "schools",
    "grade",
    "school",
    "Resources",
    "totalResults",
    "itemsPerPage",
    "startIndex",
    "detail",
    "scimType",
    "status",
    "filter",
    "maxResults",
    SCHOOL_USER_SCHEMA,
    SCHOOL_GROUP_SCHEMA,
)
_KNOWN_NAMES = {name.lower(): name for name in _READ_NAMES}


def _canonical_names(data: Any) -> Any:
    if isinstance(data, dict):
        return {_KNOWN_NAMES.get(k.lower(), k): _canonical_names(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_canonical_names(v) for v in data]
    return data


def _primary_email(emails: list[dict[str, Any]]) -> str | None:
    values = [e for e in emails if e.get("value")]
    for email in values:
        if email.get("primary"):
            return str(email["value"])
    return str(values[0]["value"]) if values else None


def _role(value: str | None) -> Role | None:
    try:
        return Role(value.strip().lower()) if value else None
    except ValueError:
        return None


def _strings(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str | int):
        return (str(value),)
    if isinstance(value, list):
        return tuple(sorted(str(v) for v in value if v is not None and v != ""))
    raise ValidationError("expected a list of strings")


def _optional_string(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str | int):
        return str(value)
    raise ValidationError("expected a string")


def parse_user(resource: Mapping[str, Any]) -> PortalUser:
    """A SCIM User resource as a ``PortalUser`` (unknown attributes ignored)."""
    user = _parse(_USER_SCHEMA, resource, "user")
    assert isinstance(user, PortalUser)
    return user


def parse_group(resource: Mapping[str, Any]) -> PortalGroup:
    """A SCIM Group resource as a ``PortalGroup`` (unknown attributes ignored)."""
    group = _parse(_GROUP_SCHEMA, resource, "group")
    assert isinstance(group, PortalGroup)
    return group


def _parse(schema: Schema, resource: Mapping[str, Any], what: str) -> Any:
    try:
        return schema.load(_canonical_names(dict(resource)))
    except ValidationError as exc:
        messages = exc.messages
        at_fault = messages.keys() if isinstance(messages, dict) else ()
        fields_at_fault = ", ".join(sorted(str(k) for k in at_fault)) or "?"
        raise PortalRequestError(
            f"the portal sent a {what} the sync cannot read (attributes: {fields_at_fault})"
        ) from exc


# --- domain changes -> SCIM -------------------------------------------------------------------

USER_PATHS = {
    "userName": "userName",
    "externalId": "externalId",
    "displayName": "displayName",
    "givenName": "name.givenName",
    "familyName": "name.familyName",
    "active": "active",
    "email": "emails",
    "role": f"{SCHOOL_USER_SCHEMA}:role",
    "schools": f"{SCHOOL_USER_SCHEMA}:schools",
    "grade": f"{SCHOOL_USER_SCHEMA}:grade",
}
GROUP_PATHS = {
    "displayName": "displayName",
    "externalId": "externalId",
    "school": f"{SCHOOL_GROUP_SCHEMA}:school",
}
_SCHOOL_USER_KEYS = ("role", "schools", "grade")


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list | tuple) and not value)


def _user_value(key: str, value: Any) -> Any:
    """A model value as its SCIM value."""
    if key == "email":
        return [{"value": value, "type": "work", "primary": True}]
    if key == "active":
        return bool(value)
    if key == "role":
        return str(value.value if isinstance(value, Role) else value)
    if key == "schools":
        return sorted(str(s) for s in value)
    return value


def user_resource(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A SCIM User resource holding ``attrs`` (model names); empty values are left out."""
    _check_keys(attrs, USER_PATHS, "user")
    resource: dict[str, Any] = {"schemas": [USER_SCHEMA]}
    name: dict[str, Any] = {}
    school: dict[str, Any] = {}
    for key, value in attrs.items():
        if _empty(value) and key != "active":
            continue
        scim_value = _user_value(key, value)
        if key in ("givenName", "familyName"):
            name[key] = scim_value
        elif key in _SCHOOL_USER_KEYS:
            school[key] = scim_value
        else:
            resource[USER_PATHS[key]] = scim_value
    if name:
        resource["name"] = name
    if school:
        resource["schemas"].append(SCHOOL_USER_SCHEMA)
        resource[SCHOOL_USER_SCHEMA] = school
    return resource


def group_resource(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A SCIM Group resource holding ``attrs`` (model names, plus ``members``: portal ids)."""
    _check_keys(attrs, {**GROUP_PATHS, "members": "members"}, "group")
    resource: dict[str, Any] = {"schemas": [GROUP_SCHEMA]}
    for key, value in attrs.items():
        if _empty(value):
            continue
        if key == "members":
            resource["members"] = [{"value": v} for v in value]
        elif key == "school":
            resource["schemas"].append(SCHOOL_GROUP_SCHEMA)
            resource[SCHOOL_GROUP_SCHEMA] = {"school": value}
        else:
            resource[key] = value
    return resource


def patch_operations(changes: Mapping[str, Any], paths: Mapping[str, str]) -> list[dict[str, Any]]:
    """PATCH operations for ``changes`` only: ``replace`` a value, ``remove`` an emptied one."""
    _check_keys(changes, paths, "change")
    operations: list[dict[str, Any]] = []
    for key, value in changes.items():
        if _empty(value) and key != "active":
            operations.append({"op": "remove", "path": paths[key]})
        else:
            operations.append(
                {"op": "replace", "path": paths[key], "value": _user_value(key, value)}
            )
    return operations


def _check_keys(attrs: Mapping[str, Any], known: Mapping[str, str], what: str) -> None:
    unknown = sorted(set(attrs) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} attributes: {', '.join(unknown)}")


def _filter_value(value: str) -> str:
    """A string as a SCIM filter literal (JSON string syntax, RFC 7644 §3.4.2.2)."""
    return json.dumps(value, ensure_ascii=False)


def _remove_member(portal_id: str) -> dict[str, Any]:
    return {"op": "remove", "path": f"members[value eq {_filter_value(portal_id)}]"}


def _external_id_is(value: str) -> str:
    return f"externalId eq {_filter_value(value)}"


def _email_is(value: str) -> str:
    """The address as an e-mail or as the userName: an account may carry it in either."""
    return f"emails[value eq {_filter_value(value)}] or userName eq {_filter_value(value)}"


def _any_of(values: Iterable[str], term: Callable[[str], str]) -> Iterator[str]:
    """Filters that match any of ``values`` (once each), a few values per filter: short URLs."""
    for chunk in _chunks(list(dict.fromkeys(values)), FILTER_VALUES_PER_QUERY):
        yield " or ".join(term(v) for v in chunk)


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# --- the client -------------------------------------------------------------------------------


class ScimPortal:
    """A portal organisation at ``base_url`` (its SCIM root), reached through ``transport``.

    One instance may be used from several threads. See the module docstring for the failure
    policy.
    """

    def __init__(self, transport: Transport, base_url: str, token: Secret | str) -> None:
        self.transport = transport
        self.base_url = base_url.rstrip("/")
        self._token = token if isinstance(token, Secret) else Secret(token)
        self._page_size: int | None = None

    def __repr__(self) -> str:
        return f"ScimPortal({self.base_url!r})"

    # --- reads ------------------------------------------------------------------------------

    def list_users(self) -> Iterator[PortalUser]:
        """Every user of the organisation, page by page."""
        for resource in self._list("Users"):
            yield parse_user(resource)

    def list_groups(self) -> Iterator[PortalGroup]:
        """Every group of the organisation (managed and manual), page by page."""
        for resource in self._list("Groups"):
            yield parse_group(resource)

    def find_users(
        self, *, external_ids: Iterable[str] = (), emails: Iterable[str] = ()
    ) -> list[PortalUser]:
        """Users whose ``externalId`` is one of ``external_ids`` or whose e-mail or userName is
        one of ``emails`` (the server compares e-mails case-insensitively, RFC 7643 §4.1)."""
        found: dict[str, PortalUser] = {}
        queries = chain(_any_of(external_ids, _external_id_is), _any_of(emails, _email_is))
        for query in queries:
            for resource in self._list("Users", query):
                user = parse_user(resource)
                found.setdefault(user.id, user)
        return list(found.values())

    def find_group(self, external_id: str) -> PortalGroup | None:
        """The group whose ``externalId`` is ``external_id``, if there is one."""
        groups = [
            parse_group(r)
            for r in self._list("Groups", f"externalId eq {_filter_value(external_id)}")
        ]
        groups.sort(key=lambda g: g.id)
        return groups[0] if groups else None

    def get_user(self, portal_id: str) -> PortalUser:
        """The user with this portal id; ``NotFound`` if there is none."""
        return parse_user(self._get("Users", portal_id))

    def get_group(self, portal_id: str) -> PortalGroup:
        """The group with this portal id; ``NotFound`` if there is none."""
        return parse_group(self._get("Groups", portal_id))

    # --- writes -----------------------------------------------------------------------------

    def create_user(self, attrs: Mapping[str, Any]) -> PortalUser:
        """Create a user from model attributes; ``ConflictError`` if its userName is taken.

        A create whose answer was lost is never sent again blindly: the user is looked up by
        ``externalId`` and userName first, and what the lost create made is returned.
        """
        resource = user_resource(attrs)
        external_id, user_name = attrs.get("externalId"), attrs.get("userName")

        def made() -> PortalUser | None:
            found = self.find_users(external_ids=[external_id] if external_id else [])
            if not found and user_name:
                found = [
                    u
                    for u in self.find_users(emails=[str(user_name)])
                    if u.user_name.lower() == str(user_name).lower()
                    and (not external_id or u.external_id in (None, external_id))
                ]
            return found[0] if found else None

        body = self._create(
            "Users",
            resource,
            made,
            conflict=f"the portal already has a user named {user_name}",
            lookup=bool(external_id or user_name),
        )
        return body if isinstance(body, PortalUser) else parse_user(body)

    def update_user(
        self, portal_id: str, changes: Mapping[str, Any], *, version: str | None = None
    ) -> PortalUser:
        """PATCH only ``changes``; conditional on ``version`` (meta.version) when given."""
        operations = patch_operations(changes, USER_PATHS)
        if not operations:
            return self.get_user(portal_id)
        conflict = (
            f"the portal already has a user named {changes['userName']}"
            if "userName" in changes
            else None
        )
        body = self._patch("Users", portal_id, operations, version=version, conflict=conflict)
        return parse_user(body)

    def delete_user(self, portal_id: str) -> None:
        """Delete the user; one that is already gone counts as deleted."""
        self._delete("Users", portal_id)

    def create_group(self, attrs: Mapping[str, Any]) -> PortalGroup:
        """Create a group from model attributes and ``members`` (portal user ids).

        A create whose answer was lost is looked up by ``externalId`` before it is sent again.
        """
        external_id = attrs.get("externalId")
        body = self._create(
            "Groups",
            group_resource(attrs),
            lambda: self.find_group(str(external_id)) if external_id else None,
            conflict=f"the portal refused a second group {attrs.get('displayName')}",
            lookup=bool(external_id),
        )
        return body if isinstance(body, PortalGroup) else parse_group(body)

    def update_group(
        self, portal_id: str, changes: Mapping[str, Any], *, version: str | None = None
    ) -> PortalGroup:
        """PATCH only ``changes`` (display name, school, externalId); never the members."""
        operations = patch_operations(changes, GROUP_PATHS)
        if not operations:
            return self.get_group(portal_id)
        return parse_group(self._patch("Groups", portal_id, operations, version=version))

    def add_members(self, group_id: str, portal_user_ids: Sequence[str]) -> None:
        """Add these users to the group (one ``add`` per request, members in chunks)."""
        for chunk in _chunks(list(dict.fromkeys(portal_user_ids)), MEMBERS_PER_PATCH):
            operation = {"op": "add", "path": "members", "value": [{"value": v} for v in chunk]}
            self._patch_members(group_id, [operation])

    def remove_members(self, group_id: str, portal_user_ids: Sequence[str]) -> None:
        """Remove these users from the group, each by a ``members[value eq "id"]`` path.

        One who is no longer a member counts as removed, also on a server that refuses the
        request with ``noTarget`` (RFC 7644 §3.5.2.2): the others are then removed one by one.
        """
        for chunk in _chunks(list(dict.fromkeys(portal_user_ids)), MEMBERS_PER_PATCH):
            if not self._remove_members_at_once(group_id, chunk) and len(chunk) > 1:
                for member in chunk:
                    self._remove_members_at_once(group_id, [member])

    def _remove_members_at_once(self, group_id: str, portal_user_ids: Sequence[str]) -> bool:
        """One request removing these members; ``False`` when the server answered ``noTarget``
        (one of them is no longer a member, and the server then removes none)."""
        try:
            self._patch_members(group_id, [_remove_member(v) for v in portal_user_ids])
        except PortalRequestError as exc:
            if exc.code != "noTarget":
                raise
            return False
        return True

    def delete_group(self, group_id: str) -> None:
        """Delete the group (its members stay); one that is already gone counts as deleted."""
        self._delete("Groups", group_id)

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
        # top-level names only: resources are canonicalised when they are parsed
        return {_KNOWN_NAMES.get(str(k).lower(), str(k)): v for k, v in data.items()}

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
                existing = made()
                if existing is not None:
                    return existing
                self.transport.sleep(self.transport.policy.backoff(attempt))
                continue
            return self._created(response, endpoint)
        raise AssertionError("unreachable: the last attempt raises")

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

    def _list(self, endpoint: str, query: str | None = None) -> Iterator[dict[str, Any]]:
        """Every resource of a listing, following startIndex/count (RFC 7644 §3.4.2.4).

        A resource seen on an earlier page is not yielded twice, and a page that brings nothing
        new ends the listing (a server that ignores ``startIndex`` must not loop us forever).
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
            total = page.get("totalResults")
            start += len(resources)
            if not new or (isinstance(total, int) and start > total):
                return

    def page_size(self) -> int:
        """How many resources to ask for per page: the server's maximum, if it says one."""
        if self._page_size is None:
            size = DEFAULT_PAGE_SIZE
            what = "reading the service provider configuration"
            try:
                response = self._send(
                    "GET", self._url("ServiceProviderConfig"), what=what, missing_ok=True
                )
                config = self._json(response, what) if response.status_code == 200 else {}
            except PortalRequestError:
                # optional for us: a server that cannot say gets the default page size
                config = {}
            limit = _canonical_names(config.get("filter") or {}).get("maxResults")
            if isinstance(limit, int) and limit > 0:
                size = min(limit, MAX_PAGE_SIZE)
            self._page_size = size
        return self._page_size


def _error_of(response: requests.Response) -> tuple[str, str | None]:
    """The SCIM error ``detail`` (shortened) and ``scimType`` of a refusal, if it has them."""
    try:
        data = _canonical_names(response.json())
    except ValueError:
        return "", None
    if not isinstance(data, dict):
        return "", None
    detail = str(data.get("detail") or "")[:_DETAIL_MAX_CHARS]
    scim_type = data.get("scimType")
    return detail, str(scim_type) if scim_type else None
