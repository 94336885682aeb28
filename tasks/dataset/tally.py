"""`Tally`: the bounded accumulator every check writes into, and that workers merge.

Memory is counters plus the first `max_examples` problems of each code, whatever the size of
the dataset: a million images with the same mistake cost one counter and twenty examples.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tasks.dataset.codes import problem
from tasks.errors import Problem
from tasks.files import SYMLINK, describe

#: Distinct image sizes kept in the histogram; the rest are counted under "other".
MAX_SIZES = 200
#: Distinct class names counted; a dataset with more has a broken class column anyway.
MAX_CLASSES = 10_000
OTHER = "other"


@dataclass
class Tally:
    max_examples: int = 20
    counts: Counter = field(default_factory=Counter)  # code -> findings
    examples: dict[str, list[Problem]] = field(default_factory=dict)
    totals: Counter = field(default_factory=Counter)  # images, labels, pairs, objects, ...
    class_instances: Counter = field(default_factory=Counter)
    class_images: Counter = field(default_factory=Counter)
    sizes: Counter = field(default_factory=Counter)  # "WxH" -> images

    def add(self, code: str, message: str, *, file: str | None = None, line: int | None = None,
            fix: str | None = None) -> None:
        """One finding; `fix` replaces the table's fix when this case needs its own (it names another file)."""
        self.counts[code] += 1
        kept = self.examples.setdefault(code, [])
        if len(kept) < self.max_examples:
            kept.append(problem(code, message, file=file, line=line, fix=fix))

    def not_followed(self, path: str, kind: str, why: str) -> None:
        """A link or special file met in the dataset: a finding; nothing was read from it."""
        code = "layout.symlink" if kind == SYMLINK else "layout.special-file"
        self.add(code, f"{why} is a {describe(kind)}; taoflow does not follow or open it", file=path)

    def add_size(self, width: int, height: int) -> None:
        key = f"{width}x{height}"
        if key in self.sizes or len(self.sizes) < MAX_SIZES:
            self.sizes[key] += 1
        else:
            self.sizes[OTHER] += 1

    def add_classes(self, instances: Counter) -> None:
        for name, n in instances.items():
            if name in self.class_instances or len(self.class_instances) < MAX_CLASSES:
                self.class_instances[name] += n
                self.class_images[name] += 1

    def merge(self, other: Tally) -> None:
        self.counts.update(other.counts)
        self.totals.update(other.totals)
        for code, items in other.examples.items():
            kept = self.examples.setdefault(code, [])
            kept.extend(items[: max(0, self.max_examples - len(kept))])
        for name, n in other.class_instances.items():
            if name in self.class_instances or len(self.class_instances) < MAX_CLASSES:
                self.class_instances[name] += n
                self.class_images[name] += other.class_images[name]
        for key, n in other.sizes.items():
            if key in self.sizes or len(self.sizes) < MAX_SIZES:
                self.sizes[key] += n
            else:
                self.sizes[OTHER] += n
