"""OData query options as Graph applies them: ``$select``, ``$top``, ``$skiptoken``, ``$filter``.

``$filter`` understands what directory queries use: ``eq``, ``ne``, ``ge``/``gt``/``le``/``lt``,
``in (...)``, ``startswith``/``endswith``, ``prop/any(x:x eq '...')``, ``and``, ``or``,
``not`` and parentheses; strings compare case-insensitively as the directory does. Like Graph,
``ne``, ``not`` and ``endswith`` are advanced queries that need the header
``ConsistencyLevel: eventual``.

Paging and delta state travel in opaque tokens: base64url JSON with an HMAC, so a client cannot
forge or edit them. Failure policy: a malformed option raises ``GraphError`` 400.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sandbox.graph.errors import GraphError

MAX_TOP = 999
DEFAULT_PAGE_SIZE = 100
SUPPORTED_OPTIONS = frozenset({"$select", "$top", "$skiptoken", "$filter", "$deltatoken", "$count"})

Getter = Callable[[str], Any]
Predicate = Callable[[Getter], bool]


# --- $select, $top -------------------------------------------------------------------------------


def check_options(args: Mapping[str, str]) -> None:
    for name in args:
        if name.startswith("$") and name not in SUPPORTED_OPTIONS:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"The query option '{name}' is not supported by the sandbox.",
            )


def parse_select(args: Mapping[str, str]) -> tuple[str, ...] | None:
    raw = args.get("$select")
    if raw is None:
        return None
    names = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not names:
        raise GraphError(400, "BadRequest", "Invalid $select: no property named.")
    return names


def context_with_select(context: str, select: tuple[str, ...] | None) -> str:
    """``@odata.context`` naming the ``$select``ed properties, as Graph writes it:
    ``$metadata#users(id,displayName)`` (and ``.../$entity`` after the list for one object)."""
    if not select:
        return context
    base, entity, _ = context.partition("/$entity")
    return f"{base}({','.join(select)}){entity}"


def parse_top(args: Mapping[str, str], *, default: int = DEFAULT_PAGE_SIZE) -> int:
    raw = args.get("$top")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP:
        raise GraphError(
            400,
            "Request_BadRequest",
            f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_TOP} inclusive.",
        )
    return int(raw)


# --- state tokens --------------------------------------------------------------------------------


def sign_state(key: str, payload: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    body = body.rstrip(b"=")
    mac = hmac.new(key.encode(), body, hashlib.sha256).digest()[:12]
    return body.decode() + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def read_state(key: str, token: str) -> dict[str, Any] | None:
    """The payload of a token this sandbox made, or ``None`` when it is not one."""
    try:
        body, mac = token.split(".", 1)
        expected = hmac.new(key.encode(), body.encode(), hashlib.sha256).digest()[:12]
        given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
        if not hmac.compare_digest(expected, given):
            return None
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def link(base_url: str, path: str, args: Mapping[str, str], **replace: str | None) -> str:
    """A URL to ``path`` with the request's query options, some replaced or removed."""
    merged = {k: v for k, v in args.items()}
    for name, value in replace.items():
        key = "$" + name
        merged.pop(key, None)
        if value is not None:
            merged[key] = value
    if not merged:
        return base_url + path
    query = "&".join(f"{k}={quote(v, safe=',()/:@')}" for k, v in merged.items())
    return f"{base_url}{path}?{query}"


# --- $filter -------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)(?![\w-])"
    r"|(?P<name>[A-Za-z_][\w.]*(?:/[A-Za-z_][\w.]*)*)|(?P<punct>[(),:]))"
)
_COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
_ADVANCED = frozenset({"ne", "not", "endswith"})


@dataclass
class _Tok:
    kind: str
    value: Any


def _bad(detail: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Invalid filter clause: {detail}")


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _bad(f"syntax error at position {pos} in '{text}'.")
        pos = match.end()
        if match.group("str") is not None:
            tokens.append(_Tok("lit", match.group("str")[1:-1].replace("''", "'")))
        elif match.group("num") is not None:
            number = match.group("num")
            tokens.append(_Tok("lit", float(number) if "." in number else int(number)))
        elif match.group("name") is not None:
            name = match.group("name")
            lowered = name.lower()
            if lowered in ("true", "false"):
                tokens.append(_Tok("lit", lowered == "true"))
            elif lowered == "null":
                tokens.append(_Tok("lit", None))
            else:
                tokens.append(_Tok("name", name))
        else:
            tokens.append(_Tok("punct", match.group("punct")))
    return tokens


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _compare(op: str, left: Any, right: Any) -> bool:
    left, right = _norm(left), _norm(right)
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        return {
            "gt": left > right,
            "ge": left >= right,
            "lt": left < right,
            "le": left <= right,
        }[op]
    except TypeError:
        return False


class _Parser:
    def __init__(self, text: str, known: Callable[[str], bool]) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.known = known
        self.advanced: set[str] = set()

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise _bad("unexpected end of the expression.")
        self.pos += 1
        return tok

    def expect(self, punct: str) -> None:
        tok = self.take()
        if tok.kind != "punct" or tok.value != punct:
            raise _bad(f"expected '{punct}'.")

    def word(self, value: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "name" and tok.value.lower() == value:
            self.pos += 1
            return True
        return False

    def parse(self) -> Predicate:
        if not self.tokens:
            raise _bad("the expression is empty.")
        pred = self.or_expr()
        if self.peek() is not None:
            raise _bad(f"unexpected '{self.peek().value}'.")  # type: ignore[union-attr]
        return pred

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.word("or"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda get: any(p(get) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self.word("and"):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda get: all(p(get) for p in parts))

    def unary(self) -> Predicate:
        if self.word("not"):
            self.advanced.add("not")
            inner = self.unary()
            return lambda get: not inner(get)
        return self.primary()

    def prop(self, name: str) -> str:
        if not self.known(name.split("/", maxsplit=1)[0]):
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"Unsupported or invalid query filter clause specified for property '{name}'.",
            )
        return name

    def literal(self) -> Any:
        tok = self.take()
        if tok.kind != "lit":
            raise _bad(f"expected a literal value, found '{tok.value}'.")
        return tok.value

    def primary(self) -> Predicate:
        tok = self.take()
        if tok.kind == "punct" and tok.value == "(":
            inner = self.or_expr()
            self.expect(")")
            return inner
        if tok.kind != "name":
            raise _bad(f"unexpected '{tok.value}'.")
        lowered = tok.value.lower()
        if lowered in ("startswith", "endswith"):
            if lowered == "endswith":
                self.advanced.add("endswith")
            self.expect("(")
            name = self.prop(self.take_name())
            self.expect(",")
            prefix = self.literal()
            self.expect(")")
            if not isinstance(prefix, str):
                raise _bad(f"{lowered} needs a string.")
            wanted = prefix.lower()
            if lowered == "startswith":
                return lambda get: str(get(name) or "").lower().startswith(wanted)
            return lambda get: str(get(name) or "").lower().endswith(wanted)
        if tok.value.lower().endswith("/any"):
            return self.any_clause(tok.value)
        name = self.prop(tok.value)
        if self.word("in"):
            self.expect("(")
            values = [self.literal()]
            while (nxt := self.peek()) is not None and nxt.kind == "punct" and nxt.value == ",":
                self.take()
                values.append(self.literal())
            self.expect(")")
            wanted_set = {_norm(v) for v in values}
            return lambda get: _norm(get(name)) in wanted_set
        op_tok = self.take()
        op = str(op_tok.value).lower()
        if op_tok.kind != "name" or op not in _COMPARISONS:
            raise _bad(f"unknown operator '{op_tok.value}'.")
        if op == "ne":
            self.advanced.add("ne")
        value = self.literal()
        return lambda get: _compare(op, get(name), value)

    def take_name(self) -> str:
        tok = self.take()
        if tok.kind != "name":
            raise _bad(f"expected a property name, found '{tok.value}'.")
        return str(tok.value)

    def any_clause(self, path: str) -> Predicate:
        collection, _, func = path.rpartition("/")
        if func.lower() != "any" or not collection:
            raise _bad(f"unsupported path '{path}'.")
        name = self.prop(collection)
        self.expect("(")
        var = self.take_name()
        self.expect(":")
        if self.take_name() != var:
            raise _bad("the lambda must compare its own variable.")
        op = self.take_name().lower()
        if op not in _COMPARISONS:
            raise _bad(f"unknown operator '{op}'.")
        value = self.literal()
        self.expect(")")
        return lambda get: any(_compare(op, item, value) for item in (get(name) or ()))


def parse_filter(text: str, known: Callable[[str], bool], headers: Mapping[str, str]) -> Predicate:
    """A predicate over a property getter; 400 for bad syntax, unknown properties, or an
    advanced query without ``ConsistencyLevel: eventual``."""
    parser = _Parser(text, known)
    predicate = parser.parse()
    if parser.advanced and headers.get("consistencylevel", "").lower() != "eventual":
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            "Operator '"
            + sorted(parser.advanced)[0]
            + "' is not supported because the required parameters might be missing. Try "
            "adding $count=true query parameter and ConsistencyLevel:eventual header.",
        )
    return predicate


def getter_for(values: Mapping[str, Any]) -> Getter:
    """A getter reading ``a/b`` paths out of nested dicts."""

    def get(path: str) -> Any:
        current: Any = values
        for part in path.split("/"):
            if not isinstance(current, Mapping):
                return None
            current = current.get(part)
        return current

    return get
