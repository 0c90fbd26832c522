"""Users over SCIM: create, read, replace, delete, uniqueness and who owns ``id`` and ``meta``."""

from __future__ import annotations

from common.portal.scim import ERROR, SCHOOL_USER_SCHEMA, USER_SCHEMA
from tests.fixtures.portal import PortalOrg
from tests.sandbox.portal.bodies import create_user, user_body


def test_creates_user_and_reads_it_back(portal_org: PortalOrg) -> None:
    school = {"role": "student", "schools": ["skola-1"], "grade": "7"}
    created = create_user(portal_org, "asa.oberg@skola.se", **{SCHOOL_USER_SCHEMA: school})

    response = portal_org.scim.get(f"/Users/{created['id']}")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/scim+json")
    user = response.json()
    assert user["userName"] == "asa.oberg@skola.se"
    assert user["name"] == {"givenName": "Åsa", "familyName": "Öberg"}
    assert user[SCHOOL_USER_SCHEMA] == school
    assert set(user["schemas"]) == {USER_SCHEMA, SCHOOL_USER_SCHEMA}
    assert user["meta"]["resourceType"] == "User"
    assert user["meta"]["location"] == f"{portal_org.scim_url}/Users/{created['id']}"


def test_creation_answers_201_with_location_and_etag(portal_org: PortalOrg) -> None:
    response = portal_org.scim.post("/Users", json=user_body("ny@skola.se"))

    assert response.status_code == 201
    body = response.json()
    assert response.headers["Location"] == body["meta"]["location"]
    assert response.headers["ETag"] == body["meta"]["version"]


def test_server_owns_id_and_meta(portal_org: PortalOrg) -> None:
    body = user_body(
        "egen@skola.se",
        id="client-chosen",
        meta={"created": "2000-01-01T00:00:00Z", "version": 'W/"99"'},
    )

    created = portal_org.scim.post("/Users", json=body).json()

    assert created["id"] != "client-chosen"
    assert created["meta"]["created"] != "2000-01-01T00:00:00Z"
    assert created["meta"]["version"] != 'W/"99"'
    replaced = portal_org.scim.put(
        f"/Users/{created['id']}", json={**body, "id": "another", "displayName": "Ny"}
    ).json()
    assert replaced["id"] == created["id"]
    assert replaced["meta"]["created"] == created["meta"]["created"]


def test_duplicate_user_name_is_409_uniqueness_whatever_the_case(portal_org: PortalOrg) -> None:
    create_user(portal_org, "Kalle.Anka@Skola.se")

    response = portal_org.scim.post("/Users", json=user_body("kalle.anka@skola.SE"))

    assert response.status_code == 409
    error = response.json()
    assert error["schemas"] == [ERROR]
    assert error["status"] == "409"
    assert error["scimType"] == "uniqueness"


def test_renaming_onto_a_taken_user_name_is_409(portal_org: PortalOrg) -> None:
    create_user(portal_org, "forsta@skola.se")
    second = create_user(portal_org, "andra@skola.se")

    response = portal_org.scim.put(f"/Users/{second['id']}", json=user_body("FORSTA@skola.se"))

    assert response.status_code == 409
    assert response.json()["scimType"] == "uniqueness"


def test_replace_puts_the_whole_resource(portal_org: PortalOrg) -> None:
    created = create_user(portal_org, "byt@skola.se", title="Lärare")

    body = user_body("byt@skola.se", displayName="Bytt Namn", active=False)
    replaced = portal_org.scim.put(f"/Users/{created['id']}", json=body).json()

    assert replaced["displayName"] == "Bytt Namn"
    assert replaced["active"] is False
    assert "title" not in replaced
    assert replaced["meta"]["version"] != created["meta"]["version"]


def test_delete_answers_204_then_404(portal_org: PortalOrg) -> None:
    created = create_user(portal_org, "borta@skola.se")

    deleted = portal_org.scim.delete(f"/Users/{created['id']}")
    again = portal_org.scim.get(f"/Users/{created['id']}")

    assert deleted.status_code == 204
    assert again.status_code == 404
    assert again.json()["schemas"] == [ERROR]
    assert again.json()["status"] == "404"


def test_unknown_ids_are_404_for_every_method(portal_org: PortalOrg) -> None:
    for response in (
        portal_org.scim.get("/Users/nope"),
        portal_org.scim.put("/Users/nope", json=user_body("x@skola.se")),
        portal_org.scim.delete("/Groups/nope"),
    ):
        assert response.status_code == 404
        assert response.json()["status"] == "404"


def test_active_accepts_the_string_forms_some_clients_send(portal_org: PortalOrg) -> None:
    created = portal_org.scim.post("/Users", json=user_body("str@skola.se", active="False"))

    assert created.status_code == 201
    assert created.json()["active"] is False


def test_plain_json_content_type_is_accepted(portal_org: PortalOrg) -> None:
    response = portal_org.scim.session.post(
        f"{portal_org.scim_url}/Users", json=user_body("json@skola.se"), timeout=10
    )

    assert response.status_code == 201
