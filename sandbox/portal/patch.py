"""SCIM PATCH (RFC 7644 §3.5.2): ``add``, ``replace`` and ``remove``, with or without a path,
with value paths (``members[value eq "id"]``, ``emails[type eq "work"].value``) and extension
URNs; operation names in any case.

Operations apply in order to a copy of the document; the first error stops the request and
nothing is kept. Beyond the RFC, for the clients that send them: ``add`` whose value path
matches nothing creates a value from the path's ``eq`` terms (Entra ID does this), and
``remove`` on a multi-valued attribute with a ``value`` removes just the values listed
(``{"op": "remove", "path": "members", "value": [{"value": "id"}]}``). A ``remove`` whose value
path matches nothing changes nothing. Setting ``primary`` on one value clears it on the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.portal.scim import PATCH_OP
from sandbox.portal.errors import (
    invalid_path,
    invalid_syntax,
    invalid_value,
    mutability,
    no_target,
)
from sandbox.portal.filter_syntax import And, Compare, Node, Parser, tokenize
from sandbox.portal.filters import AttrRef, Predicate, compile_element_filter, resolve
from sandbox.portal.resources import check_primary, normalise_single, normalise_value
from sandbox.portal.schemas import Attr, ResourceKind

OPERATIONS = ("add", "replace", "remove")


@dataclass(frozen=True)
class Target:
    """Where an operation applies: an attribute, optionally filtered, optionally a sub-attribute."""

    ref: AttrRef
    text: str
    node: Node | None = None
    predicate: Predicate | None = None
    #: the sub-attribute after a value path (``emails[type eq "work"].value``)
    sub: Attr | None = None


def apply_patch(kind: ResourceKind, doc: dict[str, Any], body: Any) -> dict[str, Any]:
    """``doc`` after the operations of a PatchOp ``body``; SCIM errors for bad requests."""
    if not isinstance(body, dict):
        raise invalid_syntax("the request body must be a JSON object")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or PATCH_OP.lower() not in {
        s.lower() for s in schemas if isinstance(s, str)
    }:
        raise invalid_syntax(f"a PATCH body must have 'schemas': [{PATCH_OP!r}]")
    operations = next((v for k, v in body.items() if k.lower() == "operations"), None)
    if not isinstance(operations, list) or not operations:
        raise invalid_syntax("a PATCH body needs a non-empty 'Operations' array")
    for operation in operations:
        apply_operation(kind, doc, operation)
    return doc


def apply_operation(kind: ResourceKind, doc: dict[str, Any], operation: Any) -> None:
    if not isinstance(operation, dict):
        raise invalid_syntax("each operation must be a JSON object")
    fields = {k.lower(): v for k, v in operation.items()}
    name = fields.get("op")
    if not isinstance(name, str) or name.lower() not in OPERATIONS:
        raise invalid_syntax(f"'op' must be add, replace or remove, not {name!r}")
    op = name.lower()
    path = fields.get("path")
    value = fields.get("value")
    if path in (None, ""):
        if op == "remove":
            raise no_target("'remove' needs a 'path'")
        if not isinstance(value, dict):
            raise invalid_syntax(f"'{op}' without a path needs an object of attributes as value")
        for key, item in value.items():
            if key.lower() != "schemas":
                _apply(kind, doc, op, parse_target(kind, key), item)
        return
    if not isinstance(path, str):
        raise invalid_path("'path' must be a string")
    if op != "remove" and "value" not in fields:
        raise invalid_value(f"'{op}' needs a 'value'")
    _apply(kind, doc, op, parse_target(kind, path), value)


def parse_target(kind: ResourceKind, text: str) -> Target:
    """Parse ``attrPath`` / ``valuePath[.subAttr]`` (RFC 7644 §3.5.2, the PATH rule)."""
    tokens = tokenize(text, invalid_path)
    if not tokens or tokens[0].kind != "word":
        raise invalid_path(f"{text!r} is not an attribute path")
    try:
        ref = resolve(kind, tokens[0].text, bare_urn=True)
    except ValueError as exc:
        raise invalid_path(str(exc)) from exc
    if len(tokens) == 1:
        return Target(ref, text)
    parser = Parser(tokens, invalid_path)
    parser.pos = 1
    parser.expect("[")
    node = parser.parse_or(True)
    parser.expect("]")
    if ref.attr is None or ref.attr.type != "complex" or not ref.attr.multi or ref.sub:
        raise invalid_path(f"{text!r}: brackets need a multi-valued complex attribute")
    sub = None
    if not parser.at_end():
        token = parser.take()
        sub = ref.attr.sub_attr(token.text[1:]) if token.text.startswith(".") else None
        if sub is None or not parser.at_end():
            raise invalid_path(f"{text!r}: expected '.subAttribute' after the brackets")
    predicate = compile_element_filter(kind, ref, node)
    return Target(ref, text, node, predicate, sub)


def _apply(kind: ResourceKind, doc: dict[str, Any], op: str, target: Target, value: Any) -> None:
    ref = target.ref
    if ref.attr is None:  # a whole extension, e.g. "urn:...:enterprise:2.0:User"
        assert ref.container is not None
        if op == "remove":
            doc.pop(ref.container, None)
            return
        if not isinstance(value, dict):
            raise invalid_value(f"{ref.container} takes an object of its attributes")
        for key, item in value.items():
            if key.lower() == "schemas":  # some clients send the extension as a whole object
                continue
            attr = ref.schema.attr(key)
            if attr is None:
                raise invalid_path(f"{key!r} is not an attribute of {ref.schema.id}")
            inner = AttrRef(ref.schema, attr, None, ref.container)
            _apply(kind, doc, op, Target(inner, f"{ref.container}:{attr.name}"), item)
        return
    attr = ref.attr
    _check_mutable(attr, target.text)
    sub = ref.sub or target.sub
    if sub is not None:
        _check_mutable(sub, target.text)
    container = doc.setdefault(ref.container, {}) if ref.container else doc
    if target.predicate is not None:
        _apply_filtered(container, op, target, value)
    elif ref.sub is not None:
        _apply_sub(container, op, attr, ref.sub, value=value, text=target.text)
    else:
        _apply_whole(container, op, attr, value, target.text)
    if attr.multi and attr.type == "complex" and container.get(attr.name):
        check_primary(attr, container[attr.name], target.text)
    if ref.container and not container:
        doc.pop(ref.container, None)


def _check_mutable(attr: Attr, text: str) -> None:
    if attr.read_only:
        raise mutability(f"{text!r} is read-only")


def _apply_whole(container: dict[str, Any], op: str, attr: Attr, value: Any, text: str) -> None:
    current = container.get(attr.name)
    if op == "remove":
        if value is not None and attr.multi and attr.type == "complex" and current:
            listed = normalise_value(attr, value, text, wrap=True) or []
            gone = {v.get("value") for v in listed}
            _store(container, attr, [e for e in current if e.get("value") not in gone])
        else:
            container.pop(attr.name, None)
        return
    if attr.multi:
        new = normalise_value(attr, value, text, wrap=True) or []
        if op == "replace" or not current:
            merged = new
        else:
            merged = list(current)
            for item in new:
                if item not in merged:
                    merged.append(item)
        _clear_other_primaries(attr, merged, new)
        _store(container, attr, merged)
        return
    new_value = normalise_single(attr, value, text)
    if attr.type == "complex" and isinstance(current, dict) and new_value is not None:
        new_value = {**current, **new_value}
    _store(container, attr, new_value)


def _apply_sub(
    container: dict[str, Any], op: str, attr: Attr, sub: Attr, *, value: Any, text: str
) -> None:
    current = container.get(attr.name)
    new = None if op == "remove" else normalise_single(sub, value, text)
    if attr.multi:
        elements = [dict(e) for e in current or []]
        if not elements and op == "add":
            elements = [{}]
        for element in elements:
            _set(element, sub.name, new)
        _store(container, attr, [e for e in elements if e])
        return
    obj = dict(current or {})
    _set(obj, sub.name, new)
    _store(container, attr, obj or None)


def _apply_filtered(container: dict[str, Any], op: str, target: Target, value: Any) -> None:
    attr = target.ref.attr
    assert attr is not None and target.predicate is not None
    elements = [dict(e) for e in container.get(attr.name) or []]
    matched = [i for i, e in enumerate(elements) if target.predicate(e)]
    sub = target.sub
    if op == "remove":
        if sub is not None:
            _check_immutable(sub, target.text)
            for i in matched:
                elements[i].pop(sub.name, None)
            elements = [e for e in elements if e]
        else:
            elements = [e for i, e in enumerate(elements) if i not in matched]
        _store(container, attr, elements)
        return
    if not matched and op == "replace":
        raise no_target(f"{target.text!r} matches no value")
    if sub is not None:
        new = normalise_single(sub, value, target.text)
        if matched:
            _check_immutable(sub, target.text)
        else:
            elements.append(_element_from_terms(target))
            matched = [len(elements) - 1]
        for i in matched:
            _set(elements[i], sub.name, new)
        changed = [elements[i] for i in matched]
    else:
        new_element = normalise_single(attr, value, target.text) or {}
        if matched:
            for i in matched:
                elements[i] = new_element if op == "replace" else {**elements[i], **new_element}
            changed = [elements[i] for i in matched]
        else:
            elements.append({**_element_from_terms(target), **new_element})
            changed = [elements[-1]]
    _clear_other_primaries(attr, elements, changed)
    _store(container, attr, [e for e in elements if e])


def _check_immutable(sub: Attr, text: str) -> None:
    if sub.mutability == "immutable":
        raise mutability(f"{text!r} is immutable")


def _element_from_terms(target: Target) -> dict[str, Any]:
    """A new value built from the ``eq`` terms of a value path (``type eq "work"``)."""
    attr = target.ref.attr
    assert attr is not None
    terms: dict[str, Any] = {}

    def collect(node: Node | None) -> bool:
        if isinstance(node, And):
            return collect(node.left) and collect(node.right)
        if isinstance(node, Compare) and node.op == "eq" and node.value is not None:
            sub = attr.sub_attr(node.path.rpartition(".")[2])
            if sub is None:
                return False
            terms[sub.name] = node.value
            return True
        return False

    if not collect(target.node):
        raise no_target(f"{target.text!r} matches no value")
    return terms


def _clear_other_primaries(attr: Attr, elements: list[Any], changed: list[Any]) -> None:
    if attr.type != "complex" or not any(c.get("primary") is True for c in changed):
        return
    chosen = next(c for c in changed if c.get("primary") is True)
    keep = next(i for i, e in enumerate(elements) if e is chosen or e == chosen)
    for i, element in enumerate(elements):
        if i != keep and element.get("primary") is True:
            element["primary"] = False


def _set(obj: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        obj.pop(key, None)
    else:
        obj[key] = value


def _store(container: dict[str, Any], attr: Attr, value: Any) -> None:
    if value in (None, [], {}):
        container.pop(attr.name, None)
    else:
        container[attr.name] = value
