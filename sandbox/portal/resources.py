"""Resource documents: checking what a client sends against the schemas, rendering what the server
answers, and the ``attributes`` / ``excludedAttributes`` selection (RFC 7644 §3.4.2.5).

A stored document holds the client's attributes under their canonical names: core attributes at
the top, each extension under its URN, ``externalId``. ``id``, ``meta``, ``User.groups`` and
``Group.members`` are added when rendering. Read-only attributes a client sends are ignored
(RFC 7643 §2.2); unknown attributes and values of the wrong type are ``invalidValue``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from sandbox.portal.errors import invalid_syntax, invalid_value
from sandbox.portal.filters import parse_datetime, resolve
from sandbox.portal.schemas import Attr, ResourceKind, Schema

TRUE_WORDS = {"true": True, "false": False}


def check_schemas(kind: ResourceKind, body: Any) -> dict[str, Any]:
    """The body as a dict whose ``schemas`` names the core schema of ``kind``."""
    if not isinstance(body, dict):
        raise invalid_syntax("the request body must be a JSON object")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise invalid_syntax("the resource must list its schemas in 'schemas'")
    if kind.core.id.lower() not in {s.lower() for s in schemas}:
        raise invalid_syntax(f"'schemas' must contain {kind.core.id}")
    for urn in schemas:
        if kind.schema_for_urn(urn) is None:
            raise invalid_value(f"{urn} is not a schema of {kind.name} on this server")
    return body


def normalise_resource(kind: ResourceKind, body: Any) -> dict[str, Any]:
    """The stored document for a POST or PUT body; errors are SCIM errors."""
    body = check_schemas(kind, body)
    doc: dict[str, Any] = {}
    for key, value in body.items():
        lowered = key.lower()
        if lowered in ("schemas", "id", "meta"):
            continue
        if lowered == "externalid":
            if value is not None:
                doc["externalId"] = normalise_single(_EXTERNAL_ID, value, "externalId")
            continue
        if lowered.startswith("urn:"):
            schema = kind.extension(key)
            if schema is None:
                raise invalid_value(f"{key} is not an extension of {kind.name} on this server")
            if value is None:
                continue
            ext = _normalise_extension(schema, key, value)
            if ext:
                doc[schema.id] = ext
            continue
        _keep_writable(
            doc,
            kind.core.attr(key),
            value,
            prefix="",
            unknown=f"{key!r} is not an attribute of {kind.name}",
            normalise=normalise_value,
        )
    check_required(kind, doc)
    return doc


def _normalise_extension(schema: Schema, key: str, value: Any) -> dict[str, Any]:
    """The attributes of one extension object; its own ``schemas`` member is ignored."""
    if not isinstance(value, dict):
        raise invalid_value(f"{key} must be a JSON object of its attributes")
    ext: dict[str, Any] = {}
    for name, item in value.items():
        if name.lower() == "schemas":
            continue
        _keep_writable(
            ext,
            schema.attr(name),
            item,
            prefix=f"{schema.id}:",
            unknown=f"{name!r} is not an attribute of {schema.id}",
            normalise=normalise_value,
        )
    return ext


def _keep_writable(
    out: dict[str, Any],
    attr: Attr | None,
    value: Any,
    *,
    prefix: str,
    unknown: str,
    normalise: Callable[[Attr, Any, str], Any],
) -> None:
    """Put ``value`` under ``attr``'s canonical name in ``out``.

    Top-level, extension and sub-attributes follow the same rules: an unknown name is
    ``invalidValue`` (the ``unknown`` sentence), a read-only one is ignored (RFC 7643 §2.2) and a
    value that unassigns is left out. ``prefix`` + the name is the path errors quote.
    """
    if attr is None:
        raise invalid_value(unknown)
    if attr.read_only:
        return
    normalised = normalise(attr, value, prefix + attr.name)
    if normalised is not None:
        out[attr.name] = normalised


def check_required(kind: ResourceKind, doc: dict[str, Any]) -> None:
    for schema in kind.schemas():
        container = doc if schema is kind.core else doc.get(schema.id, {})
        for attr in schema.attrs:
            if attr.required and container.get(attr.name) in (None, "", []):
                raise invalid_value(f"{attr.name} is required")


def normalise_value(attr: Attr, value: Any, path: str, *, wrap: bool = False) -> Any:
    """A value of ``attr`` in canonical form, ``None`` when it unassigns the attribute.

    ``wrap`` accepts a single value for a multi-valued attribute (PATCH ``add`` clients do that).
    """
    if value is None:
        return None
    if not attr.multi:
        return normalise_single(attr, value, path)
    if not isinstance(value, list):
        if not wrap:
            raise invalid_value(f"{path} is multi-valued: send a JSON array")
        value = [value]
    items: list[Any] = []
    for item in value:
        normalised = normalise_single(attr, item, path)
        if normalised is not None and normalised not in items:
            items.append(normalised)
    check_primary(attr, items, path)
    return items or None


def check_primary(attr: Attr, items: list[Any], path: str) -> None:
    if attr.type == "complex" and sum(1 for i in items if i.get("primary") is True) > 1:
        raise invalid_value(f"{path}: 'primary' may be true for one value only")


def normalise_single(attr: Attr, value: Any, path: str) -> Any:
    kind = attr.type
    if value is None:
        return None
    if kind == "complex":
        if not isinstance(value, dict):
            raise invalid_value(f"{path} is complex: send a JSON object")
        out: dict[str, Any] = {}
        for name, item in value.items():
            _keep_writable(
                out,
                attr.sub_attr(name),
                item,
                prefix=f"{path}.",
                unknown=f"{name!r} is not a sub-attribute of {path}",
                normalise=normalise_single,
            )
        if attr.multi and attr.sub_attr("value") is not None and "value" not in out:
            raise invalid_value(f"each value of {path} needs a 'value'")
        return out or None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in TRUE_WORDS:
            return TRUE_WORDS[value.lower()]
        raise invalid_value(f"{path} is a boolean: send true or false")
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_value(f"{path} is an integer")
        return value
    if kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid_value(f"{path} is a decimal number")
        return value
    if not isinstance(value, str):
        raise invalid_value(f"{path} is a {kind}: send a string")
    if kind == "dateTime" and parse_datetime(value) is None:
        raise invalid_value(f"{path} is a date and time (xsd:dateTime)")
    if kind == "binary":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise invalid_value(f"{path} is binary: send base64") from exc
    if attr.closed:
        for canonical in attr.canonical:
            if canonical.lower() == value.lower():
                return canonical
        raise invalid_value(f"{path} must be one of {', '.join(attr.canonical)}, not {value!r}")
    return value


_EXTERNAL_ID = Attr("externalId", case_exact=True)


# --- rendering ---------------------------------------------------------------------------------


def render(
    kind: ResourceKind,
    resource_id: str,
    doc: dict[str, Any],
    meta: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full SCIM representation: ``schemas``, ``id``, the attributes, ``meta``."""
    extra = extra or {}
    out: dict[str, Any] = {"schemas": [kind.core.id], "id": resource_id}
    if "externalId" in doc:
        out["externalId"] = doc["externalId"]
    for attr in kind.core.attrs:
        if attr.name in doc:
            out[attr.name] = doc[attr.name]
        elif extra.get(attr.name):
            out[attr.name] = extra[attr.name]
    for ext in kind.extensions:
        if doc.get(ext.id):
            out["schemas"].append(ext.id)
            out[ext.id] = doc[ext.id]
    out["meta"] = meta
    return out


def project(
    kind: ResourceKind,
    resource: dict[str, Any],
    attributes: list[str] | None,
    excluded: list[str] | None,
) -> dict[str, Any]:
    """``resource`` reduced to ``attributes`` or without ``excluded`` (names it does not know
    are ignored); ``id`` and ``schemas`` are always returned."""
    if attributes:
        out: dict[str, Any] = {"schemas": resource["schemas"], "id": resource["id"]}
        for name in attributes:
            _copy_path(kind, resource, out, name)
    elif excluded:
        out = {k: v for k, v in resource.items()}
        for name in excluded:
            _drop_path(kind, out, name)
    else:
        return resource
    out["schemas"] = [kind.core.id] + [e.id for e in kind.extensions if out.get(e.id)]
    return out


def _copy_path(kind: ResourceKind, src: dict[str, Any], dst: dict[str, Any], name: str) -> None:
    try:
        ref = resolve(kind, name, bare_urn=True)
    except ValueError:
        return
    source = ref.container_of(src)
    target = dst
    if ref.container is not None:
        if ref.container not in src:
            return
        target = dst.setdefault(ref.container, {})
        if ref.attr is None:
            dst[ref.container] = src[ref.container]
            return
    assert ref.attr is not None
    if ref.attr.name not in source:
        return
    value = source[ref.attr.name]
    if ref.sub is None:
        target[ref.attr.name] = value
        return
    sub = ref.sub.name
    if isinstance(value, list):
        kept = [{sub: v[sub]} for v in value if isinstance(v, dict) and sub in v]
        if kept:
            previous = target.get(ref.attr.name)
            if isinstance(previous, list) and len(previous) == len(kept):
                kept = [{**p, **k} for p, k in zip(previous, kept, strict=True)]
            target[ref.attr.name] = kept
    elif isinstance(value, dict) and sub in value:
        target.setdefault(ref.attr.name, {})[sub] = value[sub]


def _drop_path(kind: ResourceKind, out: dict[str, Any], name: str) -> None:
    try:
        ref = resolve(kind, name, bare_urn=True)
    except ValueError:
        return
    if ref.attr is None:
        out.pop(ref.container or "", None)
        return
    if ref.attr.returned == "always":
        return
    container = ref.container_of(out)
    if ref.container is not None and container:
        container = dict(container)
        out[ref.container] = container
    if ref.sub is None:
        container.pop(ref.attr.name, None)
    else:
        value = container.get(ref.attr.name)
        if isinstance(value, list):
            container[ref.attr.name] = [
                {k: v for k, v in e.items() if k != ref.sub.name} for e in value
            ]
        elif isinstance(value, dict):
            container[ref.attr.name] = {k: v for k, v in value.items() if k != ref.sub.name}
    if ref.container is not None and not container:
        out.pop(ref.container, None)
