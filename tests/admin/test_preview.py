"""The preview pages through 5,000 classes and finds them by name, from the plan kept in Redis
(the admin processes share it), and "Ladda ner CSV" gives the whole plan."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.admin.conftest import AdminServer, text_of

pytestmark = pytest.mark.slow

CLASSES = 5000


def test_five_thousand_classes_are_searchable_and_paged(
    admin_server: AdminServer, make_school: Any
) -> None:
    school = make_school()
    client = admin_server.client(school.admin)
    first = client.get(f"/skola/{school.id}/forhandsgranskning")
    assert first.status_code == 200
    key = f"skolsynk:admin-preview:{school.id}:test"
    kept = json.loads(admin_server.services.redis.get(key))
    assert kept["classes"], "the preview read the school's classes"
    # the same plan, as a municipality with 5,000 classes would have it
    kept["classes"] = [[f"id-{i:04d}", f"Klass {i:04d}"] for i in range(CLASSES)]
    admin_server.services.redis.set(key, json.dumps(kept), ex=600)

    page = client.get(f"/skola/{school.id}/forhandsgranskning")
    assert "Klasser som synkas (5000)" in text_of(page)
    assert "Sida 1 av 100" in text_of(page)
    assert page.text.count('name="group"') == 50
    last = client.get(f"/skola/{school.id}/forhandsgranskning", params={"sida": "100"})
    assert "Klass 4999" in last.text and "Klass 4949" not in last.text
    beyond = client.get(f"/skola/{school.id}/forhandsgranskning", params={"sida": "9999"})
    assert "Sida 100 av 100" in text_of(beyond)
    found = client.get(f"/skola/{school.id}/forhandsgranskning", params={"q": "klass 12"})
    # Klass 1200 to 1299, in any letter case: two pages
    assert "100 klasser matchar. Sida 1 av 2." in text_of(found)
    fresh = client.get(f"/skola/{school.id}/forhandsgranskning", params={"fresh": "1"})
    assert "Klasser som synkas (5000)" not in text_of(fresh)


def test_csv_is_the_whole_plan(admin_server: AdminServer, make_school: Any) -> None:
    school = make_school()
    school.portal.create_user("ora.klein@old.example", given_name="Ora", family_name="Klein")
    client = admin_server.client(school.admin)
    page = client.get(f"/skola/{school.id}/forhandsgranskning")
    assert "Krockar (1)" in text_of(page)
    answer = client.get(f"/skola/{school.id}/forhandsgranskning/test.csv")
    assert answer.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in answer.headers["Content-Disposition"]
    lines = answer.text.splitlines()
    assert lines[0] == "section,kind,microsoft_id,portal_id,name,detail,reason"
    sections = [line.split(",")[0] for line in lines[1:]]
    assert sections.count("collision") == 1
    assert sections.count("class") == 2 and sections.count("action") >= 24
    # production has no portal yet: nothing to download
    assert client.get(f"/skola/{school.id}/forhandsgranskning/production.csv").status_code == 302
