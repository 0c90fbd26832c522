"""The SCIM filter language (RFC 7644 §3.4.2.2, Figure 1): a tokenizer and a recursive-descent
parser producing a small syntax tree. PATCH paths (§3.5.2) reuse both.

Precedence is ``not`` over ``and`` over ``or``; attribute names and operators are
case-insensitive. A value path cannot hold another value path. Problems raise ``invalidFilter``
(or the error the caller passes, e.g. ``invalidPath`` for PATCH paths).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.portal.errors import ScimError, invalid_filter

COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w:.$-]))
      | (?P<punct>[()\[\]])
      | (?P<word>[A-Za-z_$.][\w:.$-]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # string, number, punct, word
    text: str
    pos: int

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words


def tokenize(text: str, error: Callable[[str], ScimError] = invalid_filter) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise error(f"cannot read the filter at position {pos}: {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append(Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


# --- the syntax tree ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Compare:
    path: str
    op: str
    value: Any


@dataclass(frozen=True)
class Present:
    path: str


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class ValuePath:
    path: str
    inner: Node


Node = Compare | Present | And | Or | Not | ValuePath


class Parser:
    """Recursive descent over the tokens; ``parse_path`` also serves PATCH paths."""

    def __init__(self, tokens: list[Token], error: Callable[[str], ScimError]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.error = error

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise self.error("the filter ends too early")
        self.pos += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise self.error(f"expected {text!r} at position {token.pos}, found {token.text!r}")

    def parse_or(self, in_value_path: bool) -> Node:
        return self._parse_chain("or", Or, self.parse_and, in_value_path)

    def parse_and(self, in_value_path: bool) -> Node:
        return self._parse_chain("and", And, self.parse_not, in_value_path)

    def _parse_chain(
        self,
        word: str,
        join: Callable[[Node, Node], Node],
        operand: Callable[[bool], Node],
        in_value_path: bool,
    ) -> Node:
        """``operand (word operand)*`` joined from the left: ``and`` and ``or`` differ only in
        their keyword, node and the tighter level below them."""
        node = operand(in_value_path)
        while (token := self.peek()) is not None and token.is_word(word):
            self.pos += 1
            node = join(node, operand(in_value_path))
        return node

    def parse_not(self, in_value_path: bool) -> Node:
        token = self.peek()
        if token is not None and token.is_word("not"):
            self.pos += 1
            self.expect("(")
            inner = self.parse_or(in_value_path)
            self.expect(")")
            return Not(inner)
        return self.parse_primary(in_value_path)

    def parse_primary(self, in_value_path: bool) -> Node:
        token = self.take()
        if token.text == "(":
            node = self.parse_or(in_value_path)
            self.expect(")")
            return node
        if token.kind != "word" or token.text.startswith("."):
            raise self.error(f"expected an attribute at position {token.pos}, found {token.text!r}")
        path = token.text
        following = self.take()
        if following.text == "[":
            if in_value_path:
                raise self.error("a value path cannot be nested in another value path")
            inner = self.parse_or(True)
            self.expect("]")
            return ValuePath(path, inner)
        if following.is_word("pr"):
            return Present(path)
        if not following.is_word(*COMPARE_OPS):
            raise self.error(
                f"the operator {following.text!r} at position {following.pos} is not supported"
            )
        return Compare(path, following.text.lower(), self.parse_value())

    def parse_value(self) -> Any:
        token = self.take()
        if token.kind == "string":
            try:
                return json.loads(token.text)
            except ValueError as exc:
                raise self.error(f"the string at position {token.pos} is not valid") from exc
        if token.kind == "number":
            return json.loads(token.text)
        if token.kind == "word" and token.text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token.text]
        raise self.error(
            f"expected a value (string, number, true, false or null) at position {token.pos}, "
            f"found {token.text!r}"
        )

    def at_end(self) -> bool:
        return self.pos >= len(self.tokens)


def parse(text: str) -> Node:
    """The syntax tree of a filter; ``invalidFilter`` when it does not follow the grammar."""
    tokens = tokenize(text)
    if not tokens:
        raise invalid_filter("the filter is empty")
    parser = Parser(tokens, invalid_filter)
    node = parser.parse_or(False)
    if not parser.at_end():
        token = parser.take()
        raise invalid_filter(f"unexpected {token.text!r} at position {token.pos}")
    return node
