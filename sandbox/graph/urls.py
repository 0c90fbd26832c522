"""Graph URL spellings: every form Graph v1.0 accepts for a path, reduced to one canonical path.

Graph parses URLs with Microsoft's OData library, which drops empty segments, so
``/v1.0//users`` is ``/v1.0/users`` (OData/odata.net, ``UriPathParser.ParsePathIntoSegments``:
"Skip the empty segment"). Microsoft's documentation uses, and Graph accepts:

- function calls with or without parentheses and namespace: ``/users/delta``,
  ``/users/delta()``, ``/users/microsoft.graph.delta()`` (the ``graph`` alias of the
  ``microsoft.graph`` namespace too), the same for ``restore``;
- type casts in both spellings: ``microsoft.graph.user`` and ``graph.user`` (and ``group``);
- keys as a segment or in parentheses: ``/users/{id | userPrincipalName}`` and
  ``/users('{userPrincipalName}')``, the form "Get a user" prescribes for a UPN that starts
  with ``$``;
- segment names in any letter case (the List deletedItems page writes both
  ``/directory/deleteditems`` and ``/directory/deletedItems``).

Failure policy: a segment that starts with ``$`` and is no OData segment (``/users/$x@y.com``)
raises ``GraphError`` 400 as Graph answers it; any other path this module does not know passes
unchanged, so routing answers it as Graph answers an unknown segment.
"""

from __future__ import annotations

import re

from sandbox.graph.errors import GraphError

#: segment names as the sandbox's routes spell them, by their lower-case form
ROUTED_NAMES = (
    "users groups members owners directory deletedItems education classes schools teachers "
    "subscriptions reauthorize $ref $count $batch"
)
NAMES = {name.lower(): name for name in ROUTED_NAMES.split(" ")}
#: functions and actions, which may carry a namespace and empty parentheses
OPERATIONS = frozenset({"delta", "restore"})
#: the type casts the sandbox serves
CASTS = frozenset({"user", "group"})
NAMESPACES = ("microsoft.graph.", "graph.")
KEY_IN_PARENTHESES = re.compile(r"^(users|groups|deletedItems|subscriptions)\('(.*)'\)$", re.I)


def _segment(segment: str) -> list[str]:
    keyed = KEY_IN_PARENTHESES.match(segment)
    if keyed:
        return [NAMES[keyed[1].lower()], keyed[2].replace("''", "'")]
    lowered = segment.lower()
    if lowered in NAMES:
        return [NAMES[lowered]]
    if segment.startswith("$"):  # OData keeps "$" for system segments: a UPN key needs ('...')
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
    name = lowered.removesuffix("()")
    namespaced = next((name[len(n) :] for n in NAMESPACES if name.startswith(n)), None)
    if name in OPERATIONS or namespaced in OPERATIONS:
        return [namespaced or name]
    if namespaced in CASTS:
        return [f"microsoft.graph.{namespaced}"]
    return [segment]


def canonical(path: str) -> str:
    """The path below the version as routed: ``/users/delta()`` is ``/users/delta``."""
    segments = [part for segment in path.split("/") if segment for part in _segment(segment)]
    return "/" + "/".join(segments)
