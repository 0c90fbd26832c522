"""Checking what people type into the admin app's forms, with a sentence for each problem.

A form is saved only when ``FormProblems`` is empty, so nothing is ever saved half. The rules
of the sync itself (what a scope means, what a portal must support) stay in ``common``; these
are only about the shape of the input.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from flask_babel import gettext as _

MAX_URL_LENGTH = 500
MAX_TOKEN_LENGTH = 4000
MAX_NAME_LENGTH = 200
MAX_PATTERN_LENGTH = 100
MAX_LIST_ITEMS = 500
MAX_SEARCH_LENGTH = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class FormProblems(dict[str, str]):
    """Problems by field name; falsy when the form is good."""

    def add(self, field: str, sentence: str) -> None:
        self.setdefault(field, sentence)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def portal_url(raw: str, problems: FormProblems, field: str = "url") -> str:
    """A SCIM base URL: https (http only on this machine's loopback), no query or fragment."""
    value = raw.strip().rstrip("/")
    if not value:
        problems.add(field, _("Fyll i portalens SCIM-adress."))
        return value
    if len(value) > MAX_URL_LENGTH or _CONTROL.search(value):
        problems.add(field, _("Adressen är för lång eller innehåller otillåtna tecken."))
        return value
    parts = urlsplit(value)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        problems.add(field, _("Adressen måste börja med https:// och ha ett värdnamn."))
    elif parts.scheme == "http" and not _is_loopback(host):
        problems.add(field, _("Adressen måste använda https (http går bara på den här datorn)."))
    elif parts.query or parts.fragment or parts.username or parts.password:
        problems.add(
            field, _("Adressen får inte ha frågedel, fragment eller inloggningsuppgifter.")
        )
    return value


def portal_token(raw: str, problems: FormProblems, *, required: bool, field: str = "token") -> str:
    value = raw.strip()
    if not value:
        if required:
            problems.add(field, _("Fyll i portalens token."))
        return value
    if len(value) > MAX_TOKEN_LENGTH or _CONTROL.search(value) or " " in value:
        problems.add(field, _("Token är för lång eller innehåller mellanslag eller styrtecken."))
    return value


def class_pattern(raw: str, problems: FormProblems, field: str = "class_pattern") -> str | None:
    """A shell-style class-name pattern (``7*``, ``?A``, ``[78]*``), or ``None`` for any."""
    value = raw.strip()
    if not value:
        return None
    if len(value) > MAX_PATTERN_LENGTH or _CONTROL.search(value):
        problems.add(field, _("Mönstret är för långt eller innehåller otillåtna tecken."))
        return value
    depth = 0
    for char in value:
        if char == "[":
            if depth:
                problems.add(field, _("Mönstret har en hakparentes i en hakparentes."))
                return value
            depth = 1
        elif char == "]" and depth:
            depth = 0
    if depth:
        problems.add(field, _("Mönstret har en hakparentes [ som aldrig stängs med ]."))
    return value


def name_list(raw: str, problems: FormProblems, field: str) -> frozenset[str]:
    """One class or person (id or name) a line."""
    items = [line.strip() for line in raw.splitlines() if line.strip()]
    if len(items) > MAX_LIST_ITEMS:
        problems.add(field, _("Listan är för lång (högst %(n)d rader).", n=MAX_LIST_ITEMS))
    elif any(len(i) > MAX_NAME_LENGTH or _CONTROL.search(i) for i in items):
        problems.add(field, _("En rad är för lång eller innehåller otillåtna tecken."))
    return frozenset(items)


def search_text(raw: str | None) -> str:
    """A search box's text, cut to a sane length (a search never fails on its input)."""
    return _CONTROL.sub("", (raw or "").strip())[:MAX_SEARCH_LENGTH]


def typed_name_matches(typed: str, name: str, problems: FormProblems) -> None:
    """The person typed the school's name to confirm (letter case and spaces aside)."""
    if " ".join(typed.split()).casefold() != " ".join(name.split()).casefold():
        problems.add("confirm_name", _("Skriv skolans namn exakt som det står för att bekräfta."))
