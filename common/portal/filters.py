"""The SCIM filters the client sends, and the simpler forms it falls back to (RFC 7644 §3.4.2.2).

Owns ``FilterForms`` (what one server was found to accept), the filter terms for an
``externalId`` and for an e-mail address, and the order of fallbacks: ``or`` chains -> one
query per value; ``emails[value eq "x"]`` -> ``emails.value eq "x"`` -> ``userName eq "x"``.

Failure policy: none here; the client decides when a refusal calls for a simpler form.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

#: values combined with ``or`` in one filter (keeps URLs short)
FILTER_VALUES_PER_QUERY = 10
EMAIL_TERMS = ("valuepath", "dotted", "username")


@dataclass(frozen=True)
class FilterForms:
    """The filter forms a server accepts, learnt from its refusals (RFC 7644 §3.4.2.2)."""

    or_chains: bool = True
    #: how an e-mail is searched: ``emails[value eq]``, ``emails.value eq``, or userName only
    email_term: str = "valuepath"
    #: whether ``eq`` ignores letter case on userName (``None``: not yet known)
    ignores_case: bool | None = None


def filter_value(value: str) -> str:
    """A string as a SCIM filter literal (JSON string syntax, RFC 7644 §3.4.2.2)."""
    return json.dumps(value, ensure_ascii=False)


def chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def remove_member(portal_id: str) -> dict[str, Any]:
    return {"op": "remove", "path": f"members[value eq {filter_value(portal_id)}]"}


def email_terms(value: str, forms: FilterForms) -> list[str]:
    """Terms that find an account carrying ``value`` as an e-mail or as its userName."""
    literal = filter_value(value)
    terms = {
        "valuepath": [f"emails[value eq {literal}]", f"userName eq {literal}"],
        "dotted": [f"emails.value eq {literal}", f"userName eq {literal}"],
        "username": [f"userName eq {literal}"],
    }
    return terms[forms.email_term]


def queries(
    values: Iterable[str], term: Callable[[str], list[str]], forms: FilterForms
) -> Iterator[str]:
    unique = list(dict.fromkeys(values))
    if not forms.or_chains:
        for value in unique:
            yield from term(value)
        return
    for chunk in chunks(unique, FILTER_VALUES_PER_QUERY):
        yield " or ".join(t for v in chunk for t in term(v))


def degraded(forms: FilterForms, *, emails: bool) -> FilterForms | None:
    """The next simpler filter form after a refusal, or ``None`` when there is none."""
    if forms.or_chains:
        return replace(forms, or_chains=False)
    if emails and forms.email_term != "username":
        return replace(forms, email_term=EMAIL_TERMS[EMAIL_TERMS.index(forms.email_term) + 1])
    return None


def external_id_term(value: str) -> list[str]:
    return [f"externalId eq {filter_value(value)}"]
