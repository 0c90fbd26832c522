"""What Microsoft Graph answers, validated at the boundary into typed objects.

Every schema sets ``unknown = EXCLUDE`` because Graph adds properties (``@odata.type`` and new
fields) without notice. Only the properties the sync reads are declared; a missing optional
property loads as ``None``. The loaders raise ``GraphDataError`` (a ``GraphRequestError``) when
an answer does not fit, naming the fields but never quoting the payload.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load

from common.errors import GraphRequestError
from common.graph import sds

T = TypeVar("T")


class GraphDataError(GraphRequestError):
    """Graph answered with data that does not have the shape we rely on."""


def _text(key: str) -> fields.String:
    return fields.String(data_key=key, load_default=None, allow_none=True)


class _Category(fields.String):
    """A string from a small set (a role, a type, a school id): interned, since a tenant
    repeats it on every one of its hundred thousand users."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        return sys.intern(text) if isinstance(text, str) else text


def _category(key: str) -> _Category:
    return _Category(data_key=key, load_default=None, allow_none=True)


class _ExtensionValue(fields.Field[str | None]):
    """A directory extension attribute: a string, number or boolean, read as a string."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return sys.intern(str(value))  # categorical: type, school, grade
        raise ValidationError("Not a string, number or boolean.")


def _ext(key: str) -> _ExtensionValue:
    return _ExtensionValue(data_key=key, load_default=None, allow_none=True)


# --- typed objects ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GraphUser:
    """A directory user with the properties the sync reads (and SDS classic attributes)."""

    id: str
    user_principal_name: str
    display_name: str
    mail: str | None = None
    given_name: str | None = None
    surname: str | None = None
    account_enabled: bool = True
    user_type: str | None = None
    sds_object_type: str | None = None
    sds_school_id: str | None = None
    sds_grade: str | None = None


@dataclass(frozen=True, slots=True)
class EducationUser:
    """An education user: the role and grade new SDS keeps."""

    id: str
    primary_role: str | None = None
    grade: str | None = None
    external_source: str | None = None


@dataclass(frozen=True)
class EducationSchool:
    id: str
    display_name: str | None = None
    #: the SIS id of the school (the scope's school id for new SDS)
    external_id: str | None = None


@dataclass(frozen=True)
class EducationClass:
    id: str  # the same id as the group
    display_name: str | None = None
    mail_nickname: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class GraphGroup:
    """A directory group with the SDS classic attributes that mark a class."""

    id: str
    display_name: str | None = None
    mail_nickname: str | None = None
    sds_object_type: str | None = None
    sds_school_id: str | None = None
    sds_section_id: str | None = None


@dataclass(frozen=True, slots=True)
class DirectoryRef:
    """A directory object seen in a list of members, owners or deleted items."""

    id: str
    odata_type: str | None = None

    @property
    def is_user(self) -> bool:
        # members listed with only $select=id may come without a type: count them as users
        return self.odata_type in (None, "#microsoft.graph.user")


@dataclass(frozen=True)
class Subscription:
    """A change-notification subscription (its client state is never kept here)."""

    id: str
    resource: str
    change_type: str
    notification_url: str
    expiration: datetime
    lifecycle_notification_url: str | None = None


@dataclass(frozen=True)
class GraphErrorInfo:
    """The ``error`` block of a Graph error answer."""

    code: str | None
    message: str | None


# --- schemas ------------------------------------------------------------------------------------


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


class UserSchema(_Base):
    id = fields.String(required=True)
    user_principal_name = fields.String(data_key="userPrincipalName", required=True)
    display_name = fields.String(data_key="displayName", load_default="", allow_none=True)
    mail = _text("mail")
    given_name = _text("givenName")
    surname = _text("surname")
    account_enabled = fields.Boolean(data_key="accountEnabled", load_default=True, allow_none=True)
    user_type = _category("userType")
    sds_object_type = _ext(sds.OBJECT_TYPE)
    sds_school_id = _ext(sds.SCHOOL_ID)
    sds_grade = _ext(sds.GRADE)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> GraphUser:
        if data.get("display_name") is None:
            data["display_name"] = ""
        if data.get("account_enabled") is None:
            data["account_enabled"] = True
        return GraphUser(**data)


class _StudentSchema(_Base):
    grade = _category("grade")


class EducationUserSchema(_Base):
    id = fields.String(required=True)
    primary_role = _category("primaryRole")
    external_source = _category("externalSource")
    student = fields.Nested(_StudentSchema, load_default=None, allow_none=True)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> EducationUser:
        student = data.pop("student", None) or {}
        return EducationUser(**data, grade=student.get("grade"))


class EducationSchoolSchema(_Base):
    id = fields.String(required=True)
    display_name = _text("displayName")
    external_id = _text("externalId")

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> EducationSchool:
        return EducationSchool(**data)


class EducationClassSchema(_Base):
    id = fields.String(required=True)
    display_name = _text("displayName")
    mail_nickname = _text("mailNickname")
    external_id = _text("externalId")

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> EducationClass:
        return EducationClass(**data)


class GroupSchema(_Base):
    id = fields.String(required=True)
    display_name = _text("displayName")
    mail_nickname = _text("mailNickname")
    sds_object_type = _ext(sds.OBJECT_TYPE)
    sds_school_id = _ext(sds.SCHOOL_ID)
    sds_section_id = _ext(sds.SECTION_ID)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> GraphGroup:
        return GraphGroup(**data)


class DirectoryRefSchema(_Base):
    id = fields.String(required=True)
    odata_type = _category("@odata.type")

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> DirectoryRef:
        return DirectoryRef(**data)


class SubscriptionSchema(_Base):
    id = fields.String(required=True)
    resource = fields.String(required=True)
    change_type = fields.String(data_key="changeType", required=True)
    notification_url = fields.String(data_key="notificationUrl", required=True)
    expiration = fields.AwareDateTime(data_key="expirationDateTime", required=True)
    lifecycle_notification_url = _text("lifecycleNotificationUrl")

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> Subscription:
        return Subscription(**data)


class _ErrorBlockSchema(_Base):
    code = fields.Raw(load_default=None, allow_none=True)
    message = fields.Raw(load_default=None, allow_none=True)


class ErrorSchema(_Base):
    error = fields.Nested(_ErrorBlockSchema, load_default=None, allow_none=True)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> GraphErrorInfo:
        block = data.get("error") or {}
        code, message = block.get("code"), block.get("message")
        return GraphErrorInfo(
            str(code) if code not in (None, "") else None,
            str(message) if message not in (None, "") else None,
        )


class Loader(Generic[T]):
    """Loads Graph objects of one kind with one schema instance (schemas are reusable)."""

    def __init__(self, schema: Schema, what: str) -> None:
        self.schema = schema
        self.what = what

    def one(self, data: Any) -> T:
        try:
            result: T = self.schema.load(data)
        except ValidationError as exc:
            raise _data_error(self.what, exc) from exc
        return result

    def many(self, items: Iterable[Any]) -> list[T]:
        try:
            result: list[T] = self.schema.load(list(items), many=True)
        except ValidationError as exc:
            raise _data_error(self.what, exc) from exc
        return result


def _data_error(what: str, exc: ValidationError) -> GraphDataError:
    messages = exc.messages
    names: set[str] = set()
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int) and isinstance(value, dict):  # many=True: index -> fields
                names.update(str(k) for k in value)
            else:
                names.add(str(key))
    fields_named = ", ".join(sorted(names)) or "its shape"
    return GraphDataError(f"Microsoft Graph answered {what} that do not fit ({fields_named}).")


USERS: Loader[GraphUser] = Loader(UserSchema(), "users")
EDUCATION_USERS: Loader[EducationUser] = Loader(EducationUserSchema(), "education users")
EDUCATION_SCHOOLS: Loader[EducationSchool] = Loader(EducationSchoolSchema(), "education schools")
EDUCATION_CLASSES: Loader[EducationClass] = Loader(EducationClassSchema(), "education classes")
GROUPS: Loader[GraphGroup] = Loader(GroupSchema(), "groups")
DIRECTORY_REFS: Loader[DirectoryRef] = Loader(DirectoryRefSchema(), "directory objects")
SUBSCRIPTIONS: Loader[Subscription] = Loader(SubscriptionSchema(), "subscriptions")


def load_error(body: Any) -> GraphErrorInfo:
    """The code and message of a Graph error answer; empty when the body is not one."""
    if not isinstance(body, Mapping):
        return GraphErrorInfo(None, None)
    try:
        info: GraphErrorInfo = ErrorSchema().load(body)
    except ValidationError:
        return GraphErrorInfo(None, None)
    return info
