"""A small administrator's client for the sandbox tenant's Graph API: create and change users,
classes and memberships the way an administrator or School Data Sync would, through the real
HTTP API (not in-process shortcuts). Used by ``skolsynk demo`` and the tests.

requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override ``Session.verify``, so every
request passes ``verify=`` itself (DESIGN §4.11).
"""

from __future__ import annotations

import secrets
import time
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests

from common.graph import sds

REQUEST_TIMEOUT_SECONDS = 30
TOKEN_MARGIN_SECONDS = 60
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
THROTTLE_RETRIES = 8


class CASession(requests.Session):
    """A session that trusts the sandbox CA on every request, whatever the environment says."""

    def __init__(self, ca_bundle: Path) -> None:
        super().__init__()
        self.verify = str(ca_bundle)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kw: Any) -> Any:
        kw.setdefault("verify", self.verify)
        kw.setdefault("timeout", REQUEST_TIMEOUT_SECONDS)
        return super().request(method, url, *args, **kw)


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


def _id(obj: dict[str, Any] | str) -> str:
    return obj["id"] if isinstance(obj, dict) else obj


class GraphAdminError(Exception):
    """The sandbox refused a change."""


def _check(response: requests.Response, what: str) -> requests.Response:
    if not response.ok:
        raise GraphAdminError(f"{what} failed: {response.status_code} {response.text[:300]}")
    return response


class GraphAdmin:
    """Changes a sandbox tenant through its Graph API, as the consented app of the tenant (the
    way an administrator or School Data Sync would). Raises ``GraphAdminError`` on a refusal."""

    def __init__(
        self,
        info: dict[str, Any],
        tenant_id: str,
        domain: str,
        *,
        session: requests.Session | None = None,
    ) -> None:
        self.info = info
        self.tenant_id = tenant_id
        self.domain = domain
        self.session = session or CASession(Path(info["ca_bundle"]))
        self.graph_url = info["graph_url"]
        self._token: str | None = None
        self._token_expires = 0.0

    # --- transport -----------------------------------------------------------------------------

    def token(self) -> str:
        if self._token is None or time.time() > self._token_expires - TOKEN_MARGIN_SECONDS:
            info = self.info
            response = _check(
                self.session.post(
                    f"{info['authority']}/{self.tenant_id}/oauth2/v2.0/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": info["client_id"],
                        "client_secret": info["client_secret"],
                        "scope": GRAPH_SCOPE,
                    },
                ),
                "token request",
            )
            body = response.json()
            self._token = body["access_token"]
            self._token_expires = time.time() + body["expires_in"]
        return self._token

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        """Send one request; a 429 is retried after its ``Retry-After`` (an administrator's
        script waits too), a few times at most, so throttling knobs aimed at the sync do not
        break the changes a test or the demo makes."""
        url = path if path.startswith("https://") else self.graph_url + path
        headers = {"Authorization": f"Bearer {self.token()}", **kw.pop("headers", {})}
        for _ in range(THROTTLE_RETRIES):
            response: requests.Response = self.session.request(method, url, headers=headers, **kw)
            if response.status_code != 429:
                return response
            wait = float(response.headers.get("Retry-After") or 0.1)
            response.close()
            time.sleep(min(wait, 5.0))
        return self.session.request(method, url, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def all_pages(self, path: str, **kw: Any) -> list[dict[str, Any]]:
        """Every item of a collection, following ``@odata.nextLink``."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        while url:
            body = _check(self.get(url, **kw), f"GET {url}").json()
            items += body["value"]
            url = body.get("@odata.nextLink")
        return items

    # --- administrator helpers -----------------------------------------------------------------

    def _create_person(
        self, given: str, family: str, mail: str | None, extra: dict[str, Any]
    ) -> dict[str, Any]:
        upn = f"{_fold(given)}.{_fold(family)}.{secrets.token_hex(3)}@{self.domain}"
        body = {
            "accountEnabled": True,
            "displayName": f"{given} {family}",
            "givenName": given,
            "surname": family,
            "mailNickname": upn.split("@", maxsplit=1)[0],
            "userPrincipalName": upn,
            "mail": mail or upn,
            "passwordProfile": {
                "forceChangePasswordNextSignIn": True,
                "password": secrets.token_urlsafe(16),
            },
            **extra,
        }
        created = _check(self.post("/users", json=body), "create user").json()
        return {**created, **extra}

    def create_student(
        self,
        given: str,
        family: str,
        *,
        school_id: str,
        grade: str | None = None,
        mail: str | None = None,
    ) -> dict[str, Any]:
        """A classic-SDS student (extension attributes), created through Graph."""
        extra = {
            sds.OBJECT_TYPE: sds.OBJECT_TYPE_STUDENT,
            sds.SCHOOL_ID: school_id,
            sds.STUDENT_ID: secrets.token_hex(4),
        }
        if grade is not None:
            extra[sds.GRADE] = grade
        return self._create_person(given, family, mail, extra)

    def create_teacher(
        self, given: str, family: str, *, school_id: str, mail: str | None = None
    ) -> dict[str, Any]:
        """A classic-SDS teacher (extension attributes), created through Graph."""
        extra = {
            sds.OBJECT_TYPE: sds.OBJECT_TYPE_TEACHER,
            sds.SCHOOL_ID: school_id,
            sds.TEACHER_ID: secrets.token_hex(4),
        }
        return self._create_person(given, family, mail, extra)

    def create_staff(
        self, given: str, family: str, *, mail: str | None = None, job_title: str | None = None
    ) -> dict[str, Any]:
        """A member user SDS did not create (no SDS attributes)."""
        return self._create_person(
            given, family, mail, {"jobTitle": job_title} if job_title else {}
        )

    def create_class(
        self,
        name: str,
        *,
        school_id: str,
        teachers: Iterable[dict[str, Any] | str] = (),
        students: Iterable[dict[str, Any] | str] = (),
    ) -> dict[str, Any]:
        """A classic-SDS class: a Microsoft 365 group with Section attributes; teachers become
        owners and members, students members."""
        section_id = secrets.token_hex(4)
        extra = {
            sds.OBJECT_TYPE: sds.OBJECT_TYPE_SECTION,
            sds.SCHOOL_ID: school_id,
            sds.SECTION_ID: section_id,
            sds.SECTION_NAME: name,
        }
        body = {
            "displayName": name,
            "mailNickname": f"Section_{section_id}",
            "mailEnabled": True,
            "securityEnabled": False,
            "groupTypes": ["Unified"],
            "visibility": "HiddenMembership",
            **extra,
        }
        group = {**_check(self.post("/groups", json=body), "create class").json(), **extra}
        for teacher in teachers:
            self.add_owner(group["id"], _id(teacher))
            self.add_member(group["id"], _id(teacher))
        for student in students:
            self.add_member(group["id"], _id(student))
        return group

    def _ref(self, obj_id: str) -> dict[str, str]:
        return {"@odata.id": f"{self.graph_url}/directoryObjects/{obj_id}"}

    def add_member(self, group_id: str, user_id: str) -> None:
        _check(self.post(f"/groups/{group_id}/members/$ref", json=self._ref(user_id)), "add member")

    def remove_member(self, group_id: str, user_id: str) -> None:
        _check(self.delete(f"/groups/{group_id}/members/{user_id}/$ref"), "remove member")

    def add_owner(self, group_id: str, user_id: str) -> None:
        _check(self.post(f"/groups/{group_id}/owners/$ref", json=self._ref(user_id)), "add owner")

    def rename_user(self, user_id: str, given: str, family: str) -> None:
        body = {"givenName": given, "surname": family, "displayName": f"{given} {family}"}
        _check(self.patch(f"/users/{user_id}", json=body), "rename user")

    def delete_user(self, user_id: str) -> None:
        """Soft delete: the user goes to the recycle bin."""
        _check(self.delete(f"/users/{user_id}"), "delete user")

    def delete_group(self, group_id: str) -> None:
        _check(self.delete(f"/groups/{group_id}"), "delete group")

    def restore(self, obj_id: str) -> dict[str, Any]:
        restored: dict[str, Any] = _check(
            self.post(f"/directory/deletedItems/{obj_id}/restore"), "restore"
        ).json()
        return restored

    def purge(self, obj_id: str) -> None:
        _check(self.delete(f"/directory/deletedItems/{obj_id}"), "purge")

    def users(self, select: Iterable[str] = ()) -> list[dict[str, Any]]:
        fields = ",".join(
            [
                "id",
                "displayName",
                "givenName",
                "surname",
                "mail",
                "userPrincipalName",
                "accountEnabled",
                "userType",
                *sds.USER_ATTRIBUTES,
                *select,
            ]
        )
        return self.all_pages(f"/users?$top=999&$select={fields}")

    def groups(self, select: Iterable[str] = ()) -> list[dict[str, Any]]:
        fields = ",".join(
            ["id", "displayName", "mailNickname", "groupTypes", *sds.GROUP_ATTRIBUTES, *select]
        )
        return self.all_pages(f"/groups?$top=999&$select={fields}")
