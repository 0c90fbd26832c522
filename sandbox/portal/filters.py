"""SCIM filters evaluated: attribute paths resolved against the published schemas, filters
compiled into predicates over resource documents, and the index lookups that let the store
answer the common simple forms without reading every resource.

String comparisons follow each attribute's ``caseExact``. ``ne`` is the negation of ``eq``, so a
resource without the attribute matches ``ne``. ``attr eq null`` matches when the attribute is
unassigned and ``attr ne null`` when it is assigned. A complex attribute named without a
sub-attribute is compared through its ``value`` sub-attribute (``emails co "x"`` is
``emails.value co "x"``). Unknown attributes and comparisons an attribute's type does not allow
raise ``invalidFilter``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox.portal.errors import invalid_filter
from sandbox.portal.filter_syntax import And, Compare, Node, Not, Or, Present, ValuePath
from sandbox.portal.schemas import COMMON, Attr, ResourceKind, Schema

# --- attribute paths ---------------------------------------------------------------------------

#: set while compiling for an organisation in the ``case_sensitive_filters`` mode
CASE_EXACT_FILTERS: ContextVar[bool] = ContextVar("case_exact_filters", default=False)


@dataclass(frozen=True)
class AttrRef:
    """A resolved attribute path: the schema, the attribute (``None`` for a bare extension URN)
    and the sub-attribute, with canonical names."""

    schema: Schema
    attr: Attr | None
    sub: Attr | None = None
    #: the key of the extension object in a resource, ``None`` for core and common attributes
    container: str | None = None

    @property
    def compared(self) -> Attr:
        """The definition values are compared as (``value`` for a complex attribute)."""
        assert self.attr is not None
        if self.sub is not None:
            return self.sub
        if self.attr.type == "complex":
            return self.attr.sub_attr("value") or self.attr
        return self.attr

    def container_of(self, doc: dict[str, Any]) -> dict[str, Any]:
        if self.container is None:
            return doc
        found = doc.get(self.container)
        return found if isinstance(found, dict) else {}

    def values(self, doc: dict[str, Any]) -> list[Any]:
        """The assigned values at this path in ``doc`` (flattened over multi-valued ones)."""
        assert self.attr is not None
        value = self.container_of(doc).get(self.attr.name)
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        if self.attr.type != "complex":
            return [v for v in items if v is not None]
        name = self.compared.name if self.compared is not self.attr else None
        if name is None:
            return [v for v in items if v]
        return [v.get(name) for v in items if isinstance(v, dict) and v.get(name) is not None]

    def present(self, doc: dict[str, Any]) -> bool:
        assert self.attr is not None
        value = self.container_of(doc).get(self.attr.name)
        if self.sub is None:
            return value not in (None, "", [], {})
        return any(v not in ("", [], {}) for v in self.values(doc))


def resolve(kind: ResourceKind, text: str, *, bare_urn: bool = False) -> AttrRef:
    """Resolve ``[urn:]attr[.sub]`` against ``kind``; ``ValueError`` says what is wrong."""
    schema, rest = kind.split_urn(text)
    if schema is None:
        raise ValueError(f"{text!r} names a schema this server does not have")
    container = None if schema is kind.core else schema.id
    if rest == "":
        if not bare_urn or container is None:
            raise ValueError(f"{text!r} names a schema, not an attribute")
        return AttrRef(schema, None, None, container)
    name, _, sub_name = rest.partition(".")
    attr = schema.attr(name) or (COMMON.attr(name) if schema is kind.core else None)
    if attr is None:
        raise ValueError(f"{text!r} is not an attribute of {kind.name}")
    sub = None
    if sub_name:
        sub = attr.sub_attr(sub_name)
        if sub is None:
            raise ValueError(f"{text!r}: {attr.name} has no sub-attribute {sub_name!r}")
    return AttrRef(schema, attr, sub, container)


def resolve_sub(parent: AttrRef, text: str) -> AttrRef:
    """Resolve a name inside a value path (``emails[type eq "work"]``) against ``parent``."""
    assert parent.attr is not None
    name = text
    if "." in text:  # a fully qualified name inside brackets: emails[emails.type eq "x"]
        head, _, name = text.rpartition(".")
        if head.lower() != parent.attr.name.lower():
            raise ValueError(f"{text!r} is not a sub-attribute of {parent.attr.name}")
    sub = parent.attr.sub_attr(name)
    if sub is None:
        raise ValueError(f"{parent.attr.name} has no sub-attribute {name!r}")
    return AttrRef(parent.schema, parent.attr, sub, parent.container)


# --- compilation into predicates ---------------------------------------------------------------

Predicate = Callable[[dict[str, Any]], bool]


def compile_filter(kind: ResourceKind, node: Node) -> Predicate:
    """A predicate over rendered resources; ``invalidFilter`` for unknown attributes or for
    comparisons the attribute's type does not allow."""
    return _compile(kind, node, None)


def compile_element_filter(kind: ResourceKind, parent: AttrRef, node: Node) -> Predicate:
    """A predicate over the values of a multi-valued complex attribute (PATCH value paths)."""
    return _compile(kind, node, parent)


def _compile(kind: ResourceKind, node: Node, within: AttrRef | None) -> Predicate:
    if isinstance(node, And):
        left, right = _compile(kind, node.left, within), _compile(kind, node.right, within)
        return lambda doc: left(doc) and right(doc)
    if isinstance(node, Or):
        left, right = _compile(kind, node.left, within), _compile(kind, node.right, within)
        return lambda doc: left(doc) or right(doc)
    if isinstance(node, Not):
        inner = _compile(kind, node.inner, within)
        return lambda doc: not inner(doc)
    if isinstance(node, ValuePath):
        ref = _resolve_or_fail(kind, node.path, within)
        assert ref.attr is not None
        if ref.attr.type != "complex" or ref.sub is not None:
            raise invalid_filter(f"{node.path!r} is not a complex attribute; brackets need one")
        element = _compile(kind, node.inner, ref)
        outer = ref

        def value_path(doc: dict[str, Any]) -> bool:
            assert outer.attr is not None
            value = outer.container_of(doc).get(outer.attr.name)
            items = value if isinstance(value, list) else [value] if value else []
            return any(isinstance(item, dict) and element(item) for item in items)

        return value_path
    ref = _resolve_or_fail(kind, node.path, within)
    getter = _element_getter(ref) if within is not None else ref
    if isinstance(node, Present):
        return getter.present
    return _compile_compare(node, ref, getter)


class _ElementGetter:
    """Reads a sub-attribute of one value of a multi-valued complex attribute."""

    def __init__(self, sub: Attr) -> None:
        self.name = sub.name

    def values(self, doc: dict[str, Any]) -> list[Any]:
        value = doc.get(self.name)
        return [] if value is None else [value]

    def present(self, doc: dict[str, Any]) -> bool:
        return doc.get(self.name) not in (None, "", [], {})


def _element_getter(ref: AttrRef) -> _ElementGetter:
    assert ref.sub is not None
    return _ElementGetter(ref.sub)


def _resolve_or_fail(kind: ResourceKind, path: str, within: AttrRef | None) -> AttrRef:
    try:
        return resolve_sub(within, path) if within is not None else resolve(kind, path)
    except ValueError as exc:
        raise invalid_filter(str(exc)) from exc


def _compile_compare(node: Compare, ref: AttrRef, getter: AttrRef | _ElementGetter) -> Predicate:
    definition = ref.compared
    if node.value is None:
        if node.op not in ("eq", "ne"):
            raise invalid_filter(f"null can only be compared with eq or ne, not {node.op}")
        if node.op == "eq":
            return lambda doc: not getter.present(doc)
        return getter.present
    test = _value_test(node.op if node.op != "ne" else "eq", node.value, definition, node.path)

    def matches(doc: dict[str, Any]) -> bool:
        return any(test(v) for v in getter.values(doc))

    if node.op == "ne":
        return lambda doc: not matches(doc)
    return matches


def _value_test(op: str, expected: Any, attr: Attr, path: str) -> Callable[[Any], bool]:
    kind = attr.type
    if kind == "complex":
        raise invalid_filter(f"{path!r} is complex; name one of its sub-attributes")
    if kind == "boolean":
        if op != "eq" or not isinstance(expected, bool):
            raise invalid_filter(f"{path!r} is a boolean: compare it with eq or ne and true/false")
        return lambda actual: actual is expected
    if kind in ("integer", "decimal"):
        if isinstance(expected, bool) or not isinstance(expected, int | float):
            raise invalid_filter(f"{path!r} is a number; compare it with a number")
        if op in ("co", "sw", "ew"):
            raise invalid_filter(f"{op} does not apply to the number {path!r}")
        return _ordered(op, expected, lambda v: v if isinstance(v, int | float) else None)
    if not isinstance(expected, str):
        raise invalid_filter(f"{path!r} is a {kind}; compare it with a string")
    if kind == "dateTime":
        moment = parse_datetime(expected)
        if moment is None:
            raise invalid_filter(f"{expected!r} is not a date and time (xsd:dateTime)")
        if op in ("co", "sw", "ew"):
            raise invalid_filter(f"{op} does not apply to the date {path!r}")
        return _ordered(op, moment, lambda v: parse_datetime(v) if isinstance(v, str) else None)
    if kind == "binary" and op != "eq":
        raise invalid_filter(f"{path!r} is binary; only eq and ne apply")
    exact = attr.case_exact or CASE_EXACT_FILTERS.get()
    fold: Callable[[str], str] = (lambda s: s) if exact else str.casefold
    wanted = fold(expected)

    def as_text(v: Any) -> str | None:
        return fold(v) if isinstance(v, str) else None

    if op == "co":
        return lambda v: (t := as_text(v)) is not None and wanted in t
    if op == "sw":
        return lambda v: (t := as_text(v)) is not None and t.startswith(wanted)
    if op == "ew":
        return lambda v: (t := as_text(v)) is not None and t.endswith(wanted)
    return _ordered(op, wanted, as_text)


def _ordered(op: str, expected: Any, convert: Callable[[Any], Any]) -> Callable[[Any], bool]:
    def test(actual: Any) -> bool:
        value = convert(actual)
        if value is None:
            return False
        if op == "eq":
            return bool(value == expected)
        if op == "gt":
            return bool(value > expected)
        if op == "ge":
            return bool(value >= expected)
        if op == "lt":
            return bool(value < expected)
        return bool(value <= expected)

    return test


def parse_datetime(text: str) -> datetime | None:
    """An xsd:dateTime as an aware datetime (naive ones are taken as UTC)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


# --- index lookups -----------------------------------------------------------------------------

#: what the store can look up through an index: (field, key) alternatives whose union holds
#: every match. Fields: id, userName, externalId, email, displayName, member.
Lookup = list[tuple[str, str]]

_INDEXED = {
    "User": {"id": "id", "username": "userName", "externalid": "externalId", "emails": "email"},
    "Group": {
        "id": "id",
        "displayname": "displayName",
        "externalid": "externalId",
        "members": "member",
    },
}
_FOLDED = frozenset({"userName", "email", "displayName"})


def index_lookup(kind: ResourceKind, node: Node) -> Lookup | None:
    """Index lookups that cover every resource matching ``node``, or ``None`` (scan all)."""
    if isinstance(node, And):
        return index_lookup(kind, node.left) or index_lookup(kind, node.right)
    if isinstance(node, Or):
        left, right = index_lookup(kind, node.left), index_lookup(kind, node.right)
        return left + right if left is not None and right is not None else None
    if isinstance(node, Compare):
        return _simple_lookup(kind, node.path, node.op, node.value)
    if isinstance(node, ValuePath):
        return _value_path_lookup(kind, node.path, node.inner)
    return None


def _simple_lookup(kind: ResourceKind, path: str, op: str, value: Any) -> Lookup | None:
    if op != "eq" or not isinstance(value, str):
        return None
    schema, rest = kind.split_urn(path)
    if schema is not kind.core:
        return None
    name, _, sub = rest.lower().partition(".")
    field = _INDEXED[kind.name].get(name)
    if field is None or (field in ("email", "member") and sub not in ("", "value")):
        return None
    if field not in ("email", "member") and sub:
        return None
    return [(field, value.casefold() if field in _FOLDED else value)]


def _value_path_lookup(kind: ResourceKind, path: str, inner: Node) -> Lookup | None:
    if isinstance(inner, And):
        return _value_path_lookup(kind, path, inner.left) or _value_path_lookup(
            kind, path, inner.right
        )
    if isinstance(inner, Compare) and inner.path.lower() == "value":
        return _simple_lookup(kind, path, inner.op, inner.value)
    return None
