"""A browser's side of the sign-in pages, over plain HTTP: what ``skolsynk demo`` and the tests
use to sign people in the way a browser does.

``FormBrowser`` GETs a page, reads its forms (``loginfmt``, ``passwd``, hidden fields such as
``flowToken`` or ``csrf_token``), POSTs one to its action on the same origin and stops at each
redirect, so the caller sees every hop (``follow`` goes on until a page answers). It keeps
cookies like a browser (the sandbox's session, the portal's). ``requests`` lets
``REQUESTS_CA_BUNDLE`` override ``Session.verify``, so the session sets ``verify`` per request
(DESIGN §4.11).

Failure policy: a page without the expected form raises ``AssertionError`` with the page's text
(these are test and demo drivers: a surprise is a failure to show, not to hide).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

from sandbox.graph.admin_client import CASession

MAX_REDIRECTS = 10


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(values.get("action", ""), values.get("method", "get").lower()))
        elif tag == "input" and self.forms and values.get("name"):
            if values.get("type") == "submit":
                self.forms[-1].buttons[values["name"]] = values.get("value", "")
            else:
                self.forms[-1].fields[values["name"]] = values.get("value", "")
        elif tag == "button" and self.forms and values.get("name"):
            self.forms[-1].buttons.setdefault(values["name"], values.get("value", ""))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append(data.strip())


def forms_of(html: str) -> list[Form]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def text_of(html: str) -> str:
    parser = _Forms()
    parser.feed(html)
    return " ".join(parser.texts)


@dataclass
class Redirect:
    """Where the sign-in sent the browser back to, with what."""

    url: str
    params: dict[str, str]


class FormBrowser:
    """A cookie-keeping client that fills in the sandbox's sign-in and consent forms."""

    def __init__(self, ca_bundle: Path | str, session: requests.Session | None = None) -> None:
        self.session = session or CASession(Path(ca_bundle))
        self.last: requests.Response | None = None

    def close(self) -> None:
        self.session.close()

    def get(self, url: str, **kw: Any) -> requests.Response:
        self.last = self.session.get(url, allow_redirects=False, **kw)
        return self.last

    def submit(
        self, response: requests.Response, *, button: str | None = None, **values: str
    ) -> requests.Response:
        """Post the page's first form with ``values`` filled in, as a browser would."""
        return self.submit_form(response, 0, button=button, **values)

    def submit_form(
        self, response: requests.Response, index: int, *, button: str | None = None, **values: str
    ) -> requests.Response:
        """Post the page's ``index``-th form (its hidden fields and ``values``)."""
        forms = forms_of(response.text)
        assert len(forms) > index, f"no form {index} on the page: {text_of(response.text)[:300]}"
        form = forms[index]
        data = {**form.fields, **values}
        if button is not None:
            data["decision"] = button
        target = urljoin(response.url, form.action)
        assert urlsplit(target).netloc == urlsplit(response.url).netloc, "posts off-origin"
        if form.method == "get":
            self.last = self.session.get(target, params=data, allow_redirects=False)
        else:
            self.last = self.session.post(target, data=data, allow_redirects=False)
        return self.last

    def sign_in(self, auth_uri: str, login: str, password: str) -> requests.Response:
        """Open the authorize URL and, when the sign-in page shows, post both fields."""
        page = self.get(auth_uri)
        if page.status_code == 200 and "loginfmt" in page.text:
            return self.submit(page, loginfmt=login, passwd=password)
        return page

    @staticmethod
    def redirect(response: requests.Response) -> Redirect:
        """The app's side of an answer: a 302's query (or fragment), or a form_post's fields."""
        if response.status_code == 302:
            location = response.headers["Location"]
            parts = urlsplit(location)
            query = parts.query or parts.fragment
            params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
            return Redirect(location.split("?")[0].split("#")[0], params)
        forms = forms_of(response.text)
        assert response.status_code == 200 and forms, (
            f"not an answer to the app: {response.status_code} {text_of(response.text)[:300]}"
        )
        return Redirect(forms[0].action, dict(forms[0].fields))

    def follow(self, response: requests.Response) -> requests.Response:
        """Follow redirects with GETs, keeping cookies, until a page answers."""
        for _ in range(MAX_REDIRECTS):
            if response.status_code not in (301, 302, 303):
                return response
            response = self.get(urljoin(response.url, response.headers["Location"]))
        raise AssertionError(f"more than {MAX_REDIRECTS} redirects from {response.url}")
