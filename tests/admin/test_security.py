"""Served over HTTPS, the admin app's session cookie is Secure and CSRF checks the referrer;
an unknown page or method answers with a sentence, never a stack trace."""

from __future__ import annotations

from admin.app import create_app
from common.config import load_config

ENV = {
    "SKOLSYNK_CLIENT_ID": "client",
    "SKOLSYNK_CLIENT_SECRET": "secret-that-must-not-show",
    "SKOLSYNK_SECRET_KEY": "a-secret-key-of-enough-length",
    # nothing listens here: the pages below need no Redis
    "REDIS_URL": "redis://127.0.0.1:9/0",
}


def test_session_cookie_is_secure_over_https() -> None:
    app = create_app(load_config({**ENV, "SKOLSYNK_ADMIN_URL": "https://admin.example"}))
    answer = app.test_client().get("/", base_url="https://admin.example")
    cookie = answer.headers.get("Set-Cookie", "")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert app.config["WTF_CSRF_SSL_STRICT"] is True


def test_unknown_pages_and_methods_answer_with_a_sentence() -> None:
    app = create_app(load_config(ENV))
    client = app.test_client()
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and "Sidan finns inte." in missing.text
    wrong = client.put("/")
    assert wrong.status_code == 405 and "Sidan kan inte användas så." in wrong.text
    for answer in (missing, wrong):
        assert "Traceback" not in answer.text and ENV["SKOLSYNK_CLIENT_SECRET"] not in answer.text


def test_a_school_page_without_redis_says_so(tmp_path: object) -> None:
    from admin.identity import Person

    app = create_app(load_config(ENV))
    client = app.test_client()
    person = Person(
        "t1", "o1", "A", "a@x.example", operator=False, global_admin=True, organisation="X"
    )
    with client.session_transaction() as session:
        session["person"] = person.to_session()
    answer = client.get("/skola/t1/")
    assert answer.status_code == 503
    assert "svarar inte just nu" in answer.text
