"""Every sentence of the admin app has its English, and the compiled catalogue is the one the
source says (Swedish is written in the code and templates; ``translations/en`` holds English)."""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask

from admin import i18n, pages

ADMIN = Path(__file__).resolve().parent.parent.parent / "admin"
CATALOGUE = ADMIN / "translations" / "en" / "LC_MESSAGES"
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}


def messages_in_source() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ADMIN), METHODS, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_has_an_english_translation() -> None:
    source = messages_in_source()
    assert len(source) > 250
    catalogue = read_po(io.BytesIO((CATALOGUE / "messages.po").read_bytes()))
    english = {m.id: m.string for m in catalogue if m.id}
    missing = sorted(m for m in source if not english.get(m))
    assert not missing, missing
    # the same placeholders on both sides: a translation never drops a name or a count
    for message in source:
        for name in ("%(name)s", "%(n)d", "%(n)s", "%(email)s", "%(user)s", "%(when)s"):
            assert (name in message) == (name in english[message]), (message, name)


def test_compiled_catalogue_matches_the_po_file() -> None:
    po_file = io.BytesIO((CATALOGUE / "messages.po").read_bytes())
    po = {m.id: m.string for m in read_po(po_file) if m.id}
    mo = {
        m.id: m.string
        for m in read_mo(io.BytesIO((CATALOGUE / "messages.mo").read_bytes()))
        if m.id
    }
    assert po == mo


def test_numbers_on_the_pages_are_written_as_the_pages_language_writes_them() -> None:
    # a school's limit of 2.5 % of its accounts reads "2,5" in Swedish and "2.5" in English
    app = Flask(__name__)
    i18n.setup(app)
    for language, share, seconds in (("sv", "2,5", "1,5"), ("en", "2.5", "1.5")):
        cookie = f"{i18n.LANGUAGE_COOKIE}={language}"
        with app.test_request_context(headers={"Cookie": cookie}):
            assert (pages.percent(0.025), pages.seconds(1.46)) == (share, seconds)
            assert pages.percent(0.05) == "5"
