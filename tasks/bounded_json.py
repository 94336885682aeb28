"""JSON from others (an HTTP body, a line of TAO's status.json, a registry file) parsed with a
nesting bound: `[` repeated 100,000 times makes `json.loads` raise `RecursionError`, which is no
`ValueError` and so escaped every `except ValueError` that guarded a parse. Here it is one."""

from __future__ import annotations

import json
from typing import Any


class TooDeep(ValueError):
    """The document nests deeper than the bound: not one of the documents it claims to be."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nested more than {max_depth} levels deep")
        self.max_depth = max_depth


def load_bounded(data: bytes | str, max_depth: int) -> Any:
    """`json.loads(data)`, or `TooDeep` (a `ValueError`) when it nests more than `max_depth` levels.

    >>> load_bounded('{"a": [1, 2]}', 2)
    {'a': [1, 2]}
    >>> load_bounded("[" * 100_000, 32)
    Traceback (most recent call last):
    ...
    tasks.bounded_json.TooDeep: JSON nested more than 32 levels deep
    """
    try:
        document = json.loads(data)
    except RecursionError:
        raise TooDeep(max_depth) from None
    if depth(document, max_depth) > max_depth:
        raise TooDeep(max_depth)
    return document


def depth(document: Any, stop_after: int | None = None) -> int:
    """Nesting depth of a parsed document, without recursion (a deep one must not exhaust the stack
    here either); counting stops once it passes `stop_after`.

    >>> depth({"a": [[1]]}), depth(7)
    (3, 0)
    """
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        deepest = max(deepest, level)
        if stop_after is not None and level > stop_after:
            return level
        stack.extend((child, level + 1) for child in value)
    return deepest
