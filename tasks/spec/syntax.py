"""Protobuf text format as TAO writes it, parsed into a concrete syntax tree.

Every character of the input belongs to exactly one token (whitespace and `#` comments are
tokens too), so `Document.unparse()` gives the input back unchanged and a rewrite can splice
new text over a few tokens while every other byte stays as the user wrote it.

The grammar is protobuf's text format, with the forms real TAO/TLT specs use: `name {`,
`name: {`, `name <...>`, `[a, b]` lists, `;`/`,` separators, adjacent string concatenation,
single or double quotes, `True`/`False`, exponent floats, hex/octal integers, `-inf`/`nan`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

from tasks.errors import Problem, SpecError, format_where

# One alternation for the whole lexicon. Numbers are matched generously and validated after,
# so `12abc` is reported as a malformed number rather than as two surprising tokens.
_TOKEN = re.compile(
    r"""
     (?P<ws>[ \t\r\n\f\v\ufeff]+)
    |(?P<comment>\#[^\n]*)
    |(?P<string>"(?:[^"\\\n]|\\[^\n])*"|'(?:[^'\\\n]|\\[^\n])*')
    |(?P<number>\.?[0-9](?:[0-9A-Za-z_.]|(?<=[eE])[+-])*)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<punct>[{}<>\[\]:,;\-])
    """,
    re.VERBOSE,
)
_INT = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")
_FLOAT = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fF]?")
_ESCAPE = re.compile(r"[0-7]{1,3}|x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}")
_CLOSING = {"{": "}", "<": ">"}
_SIMPLE_ESCAPES = {
    "n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
    "\\": "\\", "'": "'", '"': '"', "?": "?",
}  # fmt: skip
#: Nesting deeper than this is not a spec; refuse before Python's recursion limit does.
MAX_DEPTH = 64


@dataclass(slots=True)
class Token:
    kind: str  # ws | comment | string | number | ident | punct | eof
    text: str
    start: int  # offset in the decoded text (bytes and characters coincide for ASCII specs)
    line: int  # 1-based
    column: int  # 1-based

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(slots=True, eq=False)
class Scalar:
    """A scalar value: one literal (with its sign) or several adjacent strings."""

    kind: str  # string | number | ident
    value: str | int | float  # decoded string, parsed number (sign applied) or identifier
    text: str  # the literal as written, sign included; adjacent strings joined by their gap
    first: int  # token index of the first token (the sign, if any)
    last: int  # token index of the last token
    is_int: bool = False  # a number written as an integer literal


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


def tokenize(text: str, file: str | None = None) -> list[Token]:
    """All tokens of `text`, trivia included, ending with an `eof` token."""
    tokens: list[Token] = []
    pos, line, line_start, n = 0, 1, 0, len(text)
    match = _TOKEN.match
    while pos < n:
        m = match(text, pos)
        if m is None:
            _raise_bad_char(text, pos, line, pos - line_start + 1, file)
        kind = m.lastgroup
        chunk = m.group()
        tokens.append(Token(kind, chunk, pos, line, pos - line_start + 1))
        if kind == "ws" and "\n" in chunk:
            line += chunk.count("\n")
            line_start = pos + chunk.rindex("\n") + 1
        pos = m.end()
    tokens.append(Token("eof", "", n, line, n - line_start + 1))
    return tokens


def _raise_bad_char(text: str, pos: int, line: int, column: int, file: str | None) -> None:
    ch = text[pos]
    if ch in "\"'":
        raise syntax_error(
            f"unterminated string starting with {ch}",
            file, line, column,
            f"close the string with a matching {ch} on the same line (escape inner quotes as \\{ch})",
        )  # fmt: skip
    raise syntax_error(
        f"unexpected character {ch!r}",
        file, line, column,
        "spec files are protobuf text format: `name: value`, `name { ... }` and `# comments` only",
    )  # fmt: skip


def syntax_error(message: str, file: str | None, line: int, column: int, hint: str) -> SpecError:
    problem = Problem("syntax", message, file=file, line=line, column=column, hint=hint)
    return SpecError(
        f"cannot parse the spec: {message}",
        where=format_where(file, line, column),
        fix=hint,
        problems=[problem],
    )


def parse(text: str | bytes, file: str | None = None, kind: str = "train") -> Document:
    """Parse spec text into a `Document`; any malformed input raises `SpecError` with line:col."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            line = bytes(text)[: exc.start].count(b"\n") + 1
            raise syntax_error(
                f"the file is not UTF-8 text (byte 0x{bytes(text)[exc.start]:02x} at offset {exc.start})",
                file, line, 1, "save the spec as plain UTF-8 (ASCII) text",
            ) from None  # fmt: skip
    tokens = tokenize(text, file)
    parser = _Parser(tokens, file)
    root = parser.message(closer=None, depth=0)
    return Document(text, tokens, root, file, kind)


class _Parser:
    def __init__(self, tokens: list[Token], file: str | None) -> None:
        self.tokens = tokens
        self.file = file
        # Indices of the significant tokens; the parser never looks at trivia.
        self.sig = [i for i, t in enumerate(tokens) if t.kind not in ("ws", "comment")]
        self.pos = 0

    def peek(self, ahead: int = 0) -> tuple[int, Token]:
        i = self.sig[min(self.pos + ahead, len(self.sig) - 1)]
        return i, self.tokens[i]

    def take(self) -> tuple[int, Token]:
        i, tok = self.peek()
        if tok.kind != "eof":
            self.pos += 1
        return i, tok

    def fail(self, tok: Token, message: str, hint: str) -> SpecError:
        return syntax_error(message, self.file, tok.line, tok.column, hint)

    def message(self, closer: str | None, depth: int, opener: Token | None = None) -> MessageNode:
        if depth > MAX_DEPTH:
            _, tok = self.peek()
            raise self.fail(tok, f"blocks nested deeper than {MAX_DEPTH} levels", "check for unbalanced braces")
        node = MessageNode()
        while True:
            i, tok = self.peek()
            if tok.kind == "eof":
                if closer is None:
                    return node
                assert opener is not None
                raise self.fail(
                    tok,
                    f"missing {closer!r} for the block opened at line {opener.line}, column {opener.column}",
                    f"add {closer!r} to close the block, or remove the extra opening brace",
                )
            if tok.kind == "punct" and tok.text == closer:
                return node
            if tok.kind == "ident":
                node.fields.append(self.field(depth))
                continue
            if tok.kind == "punct" and tok.text in "}>":
                raise self.fail(tok, f"unexpected {tok.text!r}", "this closing brace has no matching opening brace")
            raise self.fail(tok, f"expected a field name, found {_describe(tok)}", "each entry reads `name: value` or `name { ... }`")

    def field(self, depth: int) -> FieldNode:
        name_index, name_tok = self.take()
        colon = None
        i, tok = self.peek()
        if tok.kind == "punct" and tok.text == ":":
            colon = i
            self.take()
            i, tok = self.peek()
        if tok.kind == "punct" and tok.text in _CLOSING:
            value: Value = self.block(depth)
        elif tok.kind == "punct" and tok.text == "[":
            value = self.list_value(depth, name_tok)
        else:
            if colon is None:
                raise self.fail(
                    tok,
                    f"expected ':' or '{{' after field name {name_tok.text!r}, found {_describe(tok)}",
                    f"write `{name_tok.text}: value` for a value or `{name_tok.text} {{ ... }}` for a block",
                )
            value = self.scalar(name_tok)
        last = value.last
        i, tok = self.peek()
        if tok.kind == "punct" and tok.text in ",;":
            self.take()
            last = i
        assert last is not None
        return FieldNode(name_tok.text, name_index, colon, value, last)

    def block(self, depth: int) -> MessageNode:
        open_index, open_tok = self.take()
        closer = _CLOSING[open_tok.text]
        node = self.message(closer, depth + 1, open_tok)
        close_index, _ = self.take()
        node.first, node.last = open_index, close_index
        return node

    def list_value(self, depth: int, name_tok: Token) -> ListValue:
        open_index, _ = self.take()
        items: list[Scalar | MessageNode] = []
        while True:
            i, tok = self.peek()
            if tok.kind == "punct" and tok.text == "]" and not items:
                self.take()
                return ListValue(items, open_index, i)
            if tok.kind == "punct" and tok.text in _CLOSING:
                items.append(self.block(depth))
            else:
                items.append(self.scalar(name_tok))
            i, tok = self.take()
            if tok.kind == "punct" and tok.text == "]":
                return ListValue(items, open_index, i)
            if not (tok.kind == "punct" and tok.text == ","):
                raise self.fail(tok, f"expected ',' or ']' in the list, found {_describe(tok)}", "write lists as `[a, b, c]`")

    def scalar(self, name_tok: Token) -> Scalar:
        first, tok = self.take()
        negative = False
        if tok.kind == "punct" and tok.text == "-":
            negative = True
            _, tok = self.take()
        if tok.kind == "string" and not negative:
            return self.strings(first)
        last = self.sig[self.pos - 1]
        text = self.tokens[first].text if not negative else "".join(t.text for t in self.tokens[first : last + 1])
        if tok.kind == "number":
            value, is_int = self.number(tok)
            return Scalar("number", -value if negative else value, text, first, last, is_int)
        if tok.kind == "ident" and (not negative or tok.text.lower() in ("inf", "infinity", "nan")):
            return Scalar("ident", ("-" if negative else "") + tok.text, text, first, last)
        raise self.fail(
            tok,
            f"expected a value for {name_tok.text!r}, found {_describe(tok)}",
            "a value is a number, a quoted string, true/false or an enum name",
        )

    def strings(self, first: int) -> Scalar:
        parts = [decode_string(self.tokens[first], self.file)]
        last = first
        while True:
            i, tok = self.peek()
            if tok.kind != "string":
                break
            self.take()
            parts.append(decode_string(tok, self.file))
            last = i
        text = "".join(t.text for t in self.tokens[first : last + 1])
        return Scalar("string", "".join(parts), text, first, last)

    def number(self, tok: Token) -> tuple[int | float, bool]:
        text = tok.text
        if _INT.fullmatch(text):
            if len(text) > 1 and text[0] == "0" and text[1] not in "xX":
                return int(text, 8), True
            return int(text, 0), True
        if _FLOAT.fullmatch(text):
            return float(text.rstrip("fF")), False
        raise self.fail(tok, f"malformed number {text!r}", "write numbers like 42, 0.5, 5e-06 or 0x1F")


def decode_string(tok: Token, file: str | None) -> str:
    """The value of a quoted literal, with C-style escapes resolved."""
    body = tok.text[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = body[i + 1]
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
            i += 2
            continue
        m = _ESCAPE.match(body, i + 1)
        if m is None:
            raise syntax_error(
                f"invalid escape \\{esc} in a string",
                file, tok.line, tok.column + i + 1,
                "use \\\\ for a backslash; valid escapes are \\n \\t \\\" \\' \\\\ \\NNN \\xHH \\uHHHH",
            )  # fmt: skip
        code = m.group()
        value = int(code, 8) if code[0] in "01234567" else int(code[1:], 16)
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise syntax_error(
                f"escape \\{code} is not a valid character", file, tok.line, tok.column + i + 1, "use a valid Unicode code point"
            )
        out.append(chr(value))
        i = m.end()
    return "".join(out)


def _describe(tok: Token) -> str:
    if tok.kind == "eof":
        return "the end of the file"
    return f"{tok.text!r}"
