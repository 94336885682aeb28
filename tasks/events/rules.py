"""Which blobs belong to which dataset: `CONTAINER/SEG/SEG...` rules, one glob per path segment.

`datasets/incoming/*` makes every folder under `incoming/` of container `datasets` a dataset:
`incoming/kitti-0412/images/000001.png` belongs to the dataset `incoming/kitti-0412`. The
dataset root is as many segments deep as the rule, so "the first N path segments" is a rule
of N segments (`*/*` for N = 1 in any container). A blob must lie *inside* the root (one
more segment at least): a file next to the dataset folders belongs to no dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Iterable

from tasks.errors import ConfigError

DEFAULT_RULES = ("*/*",)


@dataclass(frozen=True, slots=True)
class PrefixRule:
    """A container pattern and the segment patterns of the dataset root under it."""

    container: str
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> "PrefixRule":
        parts = text.strip().strip("/").split("/")
        if not parts[0] or any(not part for part in parts) or any(p in {".", ".."} for p in parts):
            raise ConfigError(
                f"rule {text!r} is not CONTAINER[/SEGMENT...]",
                where="--rule",
                fix="write e.g. 'datasets/incoming/*' (each '*' matches one folder level) or '*/*'",
            )
        return cls(container=parts[0], segments=tuple(parts[1:]))

    def __str__(self) -> str:
        return "/".join((self.container, *self.segments))

    def dataset_prefix(self, container: str, blob: str) -> str | None:
        """The dataset root this blob lies in, or None when the rule does not cover it."""
        if not fnmatchcase(container, self.container):
            return None
        parts = blob.split("/")
        depth = len(self.segments)
        if len(parts) <= depth:
            return None
        if all(fnmatchcase(part, pattern) for part, pattern in zip(parts, self.segments)):
            return "/".join(parts[:depth])
        return None

    @property
    def list_prefix(self) -> str:
        """The literal leading folders, the narrowest listing that still sees every match."""
        literal: list[str] = []
        for segment in self.segments:
            if any(ch in segment for ch in "*?["):
                break
            literal.append(segment)
        return "".join(f"{segment}/" for segment in literal)

    def matches_container(self, container: str) -> bool:
        return fnmatchcase(container, self.container)


def parse_rules(texts: Iterable[str] | None) -> tuple[PrefixRule, ...]:
    """The dataset rules from their `CONTAINER/SEG/SEG...` texts (the defaults when none are given).

    >>> rules = parse_rules(["datasets/incoming/*"])
    >>> dataset_prefix(rules, "datasets", "incoming/kitti/image_2/000001.png")
    'incoming/kitti'
    """
    rules = tuple(PrefixRule.parse(text) for text in (texts or DEFAULT_RULES))
    return rules or tuple(PrefixRule.parse(text) for text in DEFAULT_RULES)


def dataset_prefix(rules: Iterable[PrefixRule], container: str, blob: str) -> str | None:
    """The first rule that covers the blob decides its dataset."""
    for rule in rules:
        prefix = rule.dataset_prefix(container, blob)
        if prefix is not None:
            return prefix
    return None
