"""ServiceProviderConfig, Schemas and ResourceTypes describe what the server does."""

from __future__ import annotations

from common.portal.scim import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    LIST_RESPONSE,
    SCHOOL_GROUP_SCHEMA,
    SCHOOL_USER_SCHEMA,
    USER_SCHEMA,
)
from tests.fixtures.portal import PortalOrg


def test_service_provider_config_states_the_features(portal_org: PortalOrg) -> None:
    config = portal_org.scim.get("/ServiceProviderConfig").json()

    assert config["patch"]["supported"] is True
    assert config["bulk"]["supported"] is False
    assert config["filter"]["supported"] is True
    assert config["filter"]["maxResults"] == 1000
    assert config["etag"]["supported"] is True
    assert config["sort"]["supported"] is True
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"


def test_resource_types_name_their_extensions(portal_org: PortalOrg) -> None:
    listing = portal_org.scim.get("/ResourceTypes").json()
    by_name = {r["name"]: r for r in listing["Resources"]}

    assert listing["schemas"] == [LIST_RESPONSE]
    assert by_name["User"]["endpoint"] == "/Users"
    assert by_name["User"]["schema"] == USER_SCHEMA
    assert {e["schema"] for e in by_name["User"]["schemaExtensions"]} == {
        ENTERPRISE_USER_SCHEMA,
        SCHOOL_USER_SCHEMA,
    }
    assert [e["schema"] for e in by_name["Group"]["schemaExtensions"]] == [SCHOOL_GROUP_SCHEMA]
    assert portal_org.scim.get("/ResourceTypes/Group").json()["schema"] == GROUP_SCHEMA


def test_schemas_describe_the_school_extension(portal_org: PortalOrg) -> None:
    listing = portal_org.scim.get("/Schemas").json()
    ids = {s["id"] for s in listing["Resources"]}
    school = portal_org.scim.get(f"/Schemas/{SCHOOL_USER_SCHEMA}").json()
    attrs = {a["name"]: a for a in school["attributes"]}

    assert ids == {
        USER_SCHEMA,
        ENTERPRISE_USER_SCHEMA,
        SCHOOL_USER_SCHEMA,
        GROUP_SCHEMA,
        SCHOOL_GROUP_SCHEMA,
    }
    assert attrs["role"]["canonicalValues"] == ["student", "teacher"]
    assert attrs["role"]["multiValued"] is False
    assert attrs["schools"]["multiValued"] is True and attrs["schools"]["type"] == "string"
    assert attrs["grade"]["type"] == "string"
    # what SDS calls the schools, beside their ids (optional: the sync sends them when declared)
    assert attrs["schoolNames"]["multiValued"] is True and attrs["schoolNames"]["type"] == "string"
    group_school = portal_org.scim.get(f"/Schemas/{SCHOOL_GROUP_SCHEMA}").json()
    assert [a["name"] for a in group_school["attributes"]] == ["school", "schoolName"]


def test_user_name_is_described_as_unique_and_case_insensitive(portal_org: PortalOrg) -> None:
    user_schema = portal_org.scim.get(f"/Schemas/{USER_SCHEMA}").json()
    user_name = next(a for a in user_schema["attributes"] if a["name"] == "userName")

    assert user_name["uniqueness"] == "server"
    assert user_name["caseExact"] is False
    assert user_name["required"] is True
