"""A spec's concrete syntax tree over TAO's own tokens (`tasks.spec.lexer`).

Every character of the input belongs to exactly one token (whitespace and `#` comments are
tokens too), so `Document.unparse()` gives the input back unchanged and a rewrite can splice
new text over a few tokens while every other byte stays as the user wrote it.

The tree is what `text_format.Merge` accepts before it knows the field types: `name: value`,
`name {...}` / `name: {...}` / `name <...>`, `name: [a, b]` lists, one optional `,` or `;` after a
field, and adjacent strings. A value is one token (its meaning depends on the field's type and
is read by `tasks.spec.literals`) or a run of adjacent strings. Whether a name exists, a value
fits its type, or a list may stand there is the schema's to say (`tasks.spec.check`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from tasks.errors import Problem, SpecError
from tasks.spec.lexer import Token, decode_text, syntax_error, tokenize
from tasks.spec.literals import BadLiteral, unescape, unescape_old, utf8

_CLOSING = {"{": "}", "<": ">"}
#: Nesting deeper than this is not a spec; refuse before Python's recursion limit does.
MAX_DEPTH = 64


@dataclass(slots=True, eq=False)
class Scalar:
    """A value: one token, or several adjacent quoted strings (`kind` "string")."""

    kind: str  # "string" | "token"
    text: str  # the literal as written; adjacent strings joined by their gaps
    first: int  # token index of the first token
    last: int  # token index of the last token
    #: strings: the decoded text (None when the current protobuf refuses it); tokens: the token text
    value: str | None
    error: str | None = None  # strings: why the current protobuf refuses the literal
    old_value: str | None = None  # strings: what protobuf 3.20.x decodes (None when it refuses)
    old_error: str | None = None


@dataclass(slots=True, eq=False)
class ListValue:
    items: list[Union[Scalar, "MessageNode"]]
    first: int
    last: int


@dataclass(slots=True, eq=False)
class MessageNode:
    fields: list["FieldNode"] = field(default_factory=list)
    first: int | None = None  # the `{`/`<` token; None for the top level
    last: int | None = None  # the matching closer


@dataclass(slots=True, eq=False)
class FieldNode:
    name: str
    name_token: int
    colon: int | None
    value: Union[Scalar, MessageNode, ListValue]
    last: int  # last token of the field, separator included


Value = Union[Scalar, MessageNode, ListValue]


@dataclass(eq=False)
class Document:
    """A parsed spec: its text, all its tokens, and the tree over them."""

    text: str
    tokens: list[Token]
    root: MessageNode
    file: str | None = None
    kind: str = "train"

    def unparse(self) -> str:
        return "".join(t.text for t in self.tokens[:-1])

    def where(self, token_index: int) -> tuple[int, int]:
        tok = self.tokens[token_index]
        return tok.line, tok.column

    def span(self, first: int, last: int) -> tuple[int, int]:
        return self.tokens[first].start, self.tokens[last].end

    def problem(self, code: str, message: str, token: int | None, hint: str | None = None,
                severity: str = "error") -> Problem:
        """A finding at token `token` (line 1 when None), in this spec's file."""
        line, column = self.where(token) if token is not None else (1, 1)
        return Problem(code, message, severity, self.file, line, column, hint)  # type: ignore[arg-type]


def parse(text: str | bytes, file: str | None = None, kind: str = "train") -> Document:
    """Parse spec text into a `Document`; input TAO's parser refuses on syntax alone raises `SpecError`.

    >>> parse('a: 1  b { c: "x" }').root.fields[1].value.fields[0].value.value
    'x'
    """
    text = decode_text(text, file)
    tokens = tokenize(text, file)
    root = _Parser(tokens, file).message(closer=None, depth=0)
    return Document(text, tokens, root, file, kind)


class _Parser:
    def __init__(self, tokens: list[Token], file: str | None) -> None:
        self.tokens = tokens
        self.file = file
        # Indices of the significant tokens; the parser never looks at trivia.
        self.sig = [i for i, t in enumerate(tokens) if t.kind not in ("ws", "comment")]
        self.pos = 0

    def peek(self) -> tuple[int, Token]:
        i = self.sig[min(self.pos, len(self.sig) - 1)]
        return i, self.tokens[i]

    def take(self) -> tuple[int, Token]:
        i, tok = self.peek()
        if tok.kind != "eof":
            self.pos += 1
        return i, tok

    def at(self, text: str) -> bool:
        tok = self.peek()[1]
        return tok.kind == "punct" and tok.text == text

    def fail(self, tok: Token, message: str, hint: str) -> SpecError:
        return syntax_error(message, self.file, tok.line, tok.column, hint)

    def message(self, closer: str | None, depth: int, opener: Token | None = None) -> MessageNode:
        if depth > MAX_DEPTH:
            raise self.fail(self.peek()[1], f"blocks nested deeper than {MAX_DEPTH} levels", "check for unbalanced braces")
        node = MessageNode()
        while True:
            _, tok = self.peek()
            if tok.kind == "eof":
                if closer is None:
                    return node
                assert opener is not None
                raise self.fail(
                    tok,
                    f"missing {closer!r} for the block opened at line {opener.line}, column {opener.column}",
                    f"add {closer!r} to close the block, or remove the extra opening brace",
                )
            if closer is not None and self.at(closer):
                return node
            if tok.kind == "ident":
                node.fields.append(self.field(depth))
                continue
            if tok.kind == "punct" and tok.text in "}>":
                raise self.fail(tok, f"unexpected {tok.text!r}", "this closing brace has no matching opening brace")
            if tok.text == "\ufeff":
                raise self.fail(tok, "expected a field name, found '\\ufeff' (a UTF-8 byte-order mark), which TAO's "
                                "parser refuses", "save the spec as UTF-8 without a byte-order mark")
            raise self.fail(tok, f"expected a field name, found {_describe(tok)}", "each entry reads `name: value` or `name { ... }`")

    def field(self, depth: int) -> FieldNode:
        name_index, name_tok = self.take()
        colon = None
        if self.at(":"):
            colon = self.take()[0]
        _, tok = self.peek()
        if tok.kind == "punct" and tok.text in _CLOSING:
            value: Value = self.block(depth)
        elif self.at("["):
            value = self.list_value(depth, name_tok)
        elif colon is None:
            raise self.fail(
                tok,
                f"expected ':' or '{{' after field name {name_tok.text!r}, found {_describe(tok)}",
                f"write `{name_tok.text}: value` for a value or `{name_tok.text} {{ ... }}` for a block",
            )
        else:
            value = self.scalar(name_tok)
        last = value.last
        if self.at(",") or self.at(";"):
            last = self.take()[0]
        assert last is not None
        return FieldNode(name_tok.text, name_index, colon, value, last)

    def block(self, depth: int) -> MessageNode:
        open_index, open_tok = self.take()
        node = self.message(_CLOSING[open_tok.text], depth + 1, open_tok)
        node.first, node.last = open_index, self.take()[0]
        return node

    def list_value(self, depth: int, name_tok: Token) -> ListValue:
        open_index, _ = self.take()
        items: list[Scalar | MessageNode] = []
        if self.at("]"):
            return ListValue(items, open_index, self.take()[0])
        while True:
            _, tok = self.peek()
            items.append(self.block(depth) if tok.kind == "punct" and tok.text in _CLOSING else self.scalar(name_tok))
            i, tok = self.take()
            if tok.kind == "punct" and tok.text == "]":
                return ListValue(items, open_index, i)
            if not (tok.kind == "punct" and tok.text == ","):
                raise self.fail(tok, f"expected ',' or ']' in the list, found {_describe(tok)}", "write lists as `[a, b, c]`")

    def scalar(self, name_tok: Token) -> Scalar:
        first, tok = self.take()
        if tok.kind == "string":
            return self.strings(first)
        if tok.kind in ("ident", "number"):
            return Scalar("token", tok.text, first, first, tok.text)
        raise self.fail(
            tok,
            f"expected a value for {name_tok.text!r}, found {_describe(tok)}",
            "a value is a number, a quoted string, true/false or an enum name",
        )

    def strings(self, first: int) -> Scalar:
        last = first
        while self.peek()[1].kind == "string":
            last = self.take()[0]
        parts = [self.tokens[i] for i in range(first, last + 1) if self.tokens[i].kind == "string"]
        text = "".join(t.text for t in self.tokens[first : last + 1])
        scalar = Scalar("string", text, first, last, None)
        if not any("\\" in t.text for t in parts):  # no escapes: both protobuf lines read the text as written
            scalar.value = scalar.old_value = "".join(t.text[1:-1] for t in parts)
            return scalar
        try:
            scalar.value = utf8(b"".join(unescape(t.text[1:-1]) for t in parts))
        except BadLiteral as exc:
            scalar.error = str(exc)
        try:
            scalar.old_value = utf8(b"".join(unescape_old(t.text[1:-1]) for t in parts))
        except BadLiteral as exc:
            scalar.old_error = str(exc)
        return scalar


def _describe(tok: Token) -> str:
    if tok.kind == "eof":
        return "the end of the file"
    return f"{tok.text!r}"
