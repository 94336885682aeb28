"""Tokens of a spec exactly as TAO's parser (`google.protobuf.text_format.Merge`) cuts them.

TAO reads a spec with `open(path, "r").read()` (UTF-8, universal newlines: NVIDIA's
`spec_handler/spec_loader.py` load_proto, `scripts/dataset_convert.py`, TAO Deploy's
`proto/utils.py`) and hands it to `text_format.Merge`. Merge itself ends lines and `#` comments at
`\n` only (a bare CR inside a comment would swallow the rest of the line), but it never sees a CR:
`open()` has turned every `\r\n` and `\r` into `\n`. So here a CR ends a line, a comment and an
unterminated string exactly as LF does. Merge's tokenizer takes, after skipping whitespace (any Unicode space) and
`#` comments: an identifier `[a-zA-Z_][0-9a-zA-Z_+-]*`, a "number" `([0-9+-]|\\.[0-9])[0-9a-zA-Z_.+-]*`
(a sign belongs to its number: `- 1` is the token `-`, which is no value), a quoted string that
ends at its quote or at the end of the line, or else one character. The patterns below are the same,
with `\\r` as a line end too (universal newlines), and whitespace and comments kept as tokens so
the file can be given back byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tasks.errors import Problem, SpecError, format_where

_TOKEN = re.compile(
    r"""
     (?P<ws>\s+)
    |(?P<comment>\#[^\r\n]*)
    |(?P<ident>[a-zA-Z_][0-9a-zA-Z_+-]*)
    |(?P<number>(?:[0-9+-]|\.[0-9])[0-9a-zA-Z_.+-]*)
    |(?P<string>"(?:[^"\\\r\n]|\\[^\r\n])*(?:"|\\?(?=[\r\n]|\Z))|'(?:[^'\\\r\n]|\\[^\r\n])*(?:'|\\?(?=[\r\n]|\Z)))
    |(?P<punct>.|[\r\n])
    """,
    re.VERBOSE,
)


@dataclass(slots=True)
class Token:
    kind: str  # ws | comment | ident | number | string | punct | eof
    text: str
    start: int  # offset in the decoded text
    line: int  # 1-based
    column: int  # 1-based, in characters

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def tokenize(text: str, file: str | None = None) -> list[Token]:
    """All tokens of `text`, trivia included, ending with an `eof` token.

    >>> [t.text for t in tokenize("a: -1 # x")][:5]
    ['a', ':', ' ', '-1', ' ']
    """
    tokens: list[Token] = []
    pos, line, line_start, n = 0, 1, 0, len(text)
    match = _TOKEN.match
    while pos < n:
        m = match(text, pos)
        assert m is not None  # the last alternative takes any one character
        kind, chunk = m.lastgroup or "punct", m.group()
        if kind == "string" and (len(chunk) < 2 or chunk[-1] != chunk[0]):
            raise syntax_error(
                f"unterminated string starting with {chunk[0]}",
                file, line, pos - line_start + 1,
                f"close the string with a matching {chunk[0]} on the same line (escape inner quotes as \\{chunk[0]})",
            )  # fmt: skip
        tokens.append(Token(kind, chunk, pos, line, pos - line_start + 1))
        if kind == "ws":
            last = max(chunk.rfind("\n"), chunk.rfind("\r"))
            if last >= 0:  # \r\n, \r and \n each end a line (TAO reads with universal newlines)
                line += chunk.count("\n") + chunk.count("\r") - chunk.count("\r\n")
                line_start = pos + last + 1
        pos = m.end()
    tokens.append(Token("eof", "", n, line, n - line_start + 1))
    return tokens


def syntax_error(message: str, file: str | None, line: int, column: int, hint: str) -> SpecError:
    problem = Problem("syntax", message, file=file, line=line, column=column, hint=hint)
    return SpecError(
        f"cannot parse the spec: {message}",
        where=format_where(file, line, column),
        fix=hint,
        problems=[problem],
    )


def decode_text(data: str | bytes, file: str | None) -> str:
    """The text TAO reads from a file: strict UTF-8; a byte-order mark is kept (TAO refuses it)."""
    if isinstance(data, str):
        return data
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        before = bytes(data)[: exc.start]
        # \r\n, \r and \n each end a line, as everywhere in a spec (universal newlines)
        line = before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1
        column = len(re.split(rb"\r\n|\r|\n", before)[-1].decode("utf-8", "replace")) + 1
        raise syntax_error(
            f"the file is not UTF-8 text (byte 0x{bytes(data)[exc.start]:02x} at offset {exc.start})",
            file, line, column, "save the spec as plain UTF-8 (ASCII) text",
        ) from None  # fmt: skip
