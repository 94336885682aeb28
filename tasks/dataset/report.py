"""`ValidationReport`: what the validator found, as JSON for machines and markdown for people.

Class names, file names, the findings' messages and the dataset's location come from the dataset:
in the markdown (the `dataset-validation` artifact) each is plain text, escaped for Markdown and for
the HTML inside it, on one line (`markdown_text`). A class named `<img src=x onerror=alert(1)>` or
`[link](http://evil)` is shown as those characters, never as an image, a link or emphasis.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field, replace

from tasks.dataset.codes import CHECKS
from tasks.dataset.tally import Tally
from tasks.errors import DatasetError, Problem


@dataclass
class ValidationReport:
    data_dir: str
    image_dir: str | None
    label_dir: str | None
    strict: bool = False
    deep: bool = False
    totals: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # code -> findings
    examples: dict[str, list[Problem]] = field(default_factory=dict)  # code -> first N
    class_instances: dict[str, int] = field(default_factory=dict)
    class_images: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)  # "WxH" -> images
    frames: dict[str, int | None] = field(default_factory=dict)  # train / validation, when known
    seconds: float = 0.0
    reads: dict[str, int] = field(default_factory=dict)  # blob data: {"requests", "bytes"} of the ranged GETs

    @classmethod
    def from_tally(cls, tally: Tally, *, strict: bool = False, **kw) -> ValidationReport:
        order = list(CHECKS)
        examples = {c: tally.examples[c] for c in sorted(tally.examples, key=order.index)}
        if strict:  # examples carry the severity the run applied
            examples = {c: [replace(p, severity="error") for p in items] for c, items in examples.items()}
        return cls(
            totals={k: tally.totals.get(k, 0) for k in ("images", "labels", "pairs", "objects", "empty_label_files")},
            counts={c: tally.counts[c] for c in sorted(tally.counts, key=order.index)},
            examples=examples,
            strict=strict,
            class_instances=dict(tally.class_instances.most_common()),
            class_images={c: tally.class_images[c] for c, _ in tally.class_instances.most_common()},
            sizes=dict(tally.sizes.most_common()),
            **kw,
        )

    def severity(self, code: str) -> str:
        """Effective severity: --strict turns every warning into an error."""
        return "error" if self.strict else CHECKS[code].severity

    @property
    def errors(self) -> int:
        return sum(n for c, n in self.counts.items() if self.severity(c) == "error")

    @property
    def warnings(self) -> int:
        return sum(n for c, n in self.counts.items() if self.severity(c) == "warning")

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def problems(self) -> list[Problem]:
        return [p for items in self.examples.values() for p in items]

    def summary(self) -> str:
        t = self.totals
        verdict = "passed" if self.ok else "FAILED"
        return (f"dataset {verdict}: {t.get('images', 0)} images, {t.get('labels', 0)} label files, "
                f"{t.get('objects', 0)} objects; {self.errors} errors, {self.warnings} warnings"
                f"{' (strict)' if self.strict else ''} in {self.seconds:.1f} s")

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "summary": self.summary(),
            "data_dir": self.data_dir,
            "image_dir": self.image_dir,
            "label_dir": self.label_dir,
            "strict": self.strict,
            "deep": self.deep,
            "seconds": round(self.seconds, 3),
            "totals": self.totals,
            "frames": self.frames,
            "errors": self.errors,
            "warnings": self.warnings,
            "checks": [
                {"code": c, "severity": self.severity(c), "count": n, "title": CHECKS[c].title,
                 "examples": [p.to_dict() for p in self.examples.get(c, [])]}
                for c, n in self.counts.items()
            ],
            "classes": {c: {"instances": n, "images": self.class_images.get(c, 0)}
                        for c, n in self.class_instances.items()},
            "image_sizes": self.sizes,
            **({"reads": self.reads} if self.reads else {}),
        }

    def to_error(self) -> DatasetError | None:
        """The DatasetError that fails the step, or None when the dataset passes."""
        if self.ok:
            return None
        failing = [p for c, items in self.examples.items() if self.severity(c) == "error" for p in items[:3]]
        if self.errors == 1:  # one mistake: the error is that finding's place and fix (the TFRecords, say)
            return DatasetError(self.summary(), where=failing[0].where or self.data_dir, problems=failing,
                                fix=failing[0].hint or "fix the file listed, then validate again")
        return DatasetError(self.summary(), where=self.data_dir, problems=failing,
                            fix="fix the files listed (each finding names its file and line), then validate again")

    def to_markdown(self, max_examples: int = 5) -> str:
        t = self.totals
        out = [f"# Dataset validation: {'passed' if self.ok else 'FAILED'}", "",
               f"{markdown_text(self.data_dir)} — {markdown_text(self.summary())}", "",
               "| images | label files | pairs | objects | empty label files |", "|---|---|---|---|---|",
               f"| {t.get('images', 0)} | {t.get('labels', 0)} | {t.get('pairs', 0)} | {t.get('objects', 0)} "
               f"| {t.get('empty_label_files', 0)} |", ""]
        if self.counts:
            out += ["## Findings", "", "| code | severity | count | what |", "|---|---|---|---|"]
            out += [f"| `{c}` | {self.severity(c)} | {n} | {CHECKS[c].title} |" for c, n in self.counts.items()]
            out.append("")
            for code, items in self.examples.items():
                out.append(f"### `{code}` — {CHECKS[code].fix}")
                out += [f"- {markdown_text(p.where or '')}: {markdown_text(p.message)}"
                        + (f" (fix: {markdown_text(p.hint)})" if p.hint and p.hint != CHECKS[code].fix else "")
                        for p in items[:max_examples]]
                if self.counts[code] > min(len(items), max_examples):
                    out.append(f"- … and {self.counts[code] - min(len(items), max_examples)} more")
                out.append("")
        if self.class_instances:
            out += ["## Classes (lower-cased as TAO does)", "", "| class | instances | images |", "|---|---|---|"]
            out += [f"| {markdown_text(c)} | {n} | {self.class_images.get(c, 0)} |"
                    for c, n in self.class_instances.items()]
            out.append("")
        if self.sizes:
            out += ["## Image sizes", "", "| size | images |", "|---|---|"]
            out += [f"| {s} | {n} |" for s, n in list(self.sizes.items())[:20]]
            out.append("")
        return "\n".join(out)


#: Every ASCII punctuation character may be backslash-escaped in CommonMark (and GFM); `&` and `;`
#: are left for the entities below. Escaping `:`, `.` and `@` too keeps GFM from turning a bare
#: `http://…`, `www.…` or address into a link.
_PUNCTUATION = re.compile(r"""([!"#$%'()*+,\-./:<=>?@\[\\\]^_`{|}~])""")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def markdown_text(text: str) -> str:
    r"""`text` as literal text inside a Markdown line or table cell: control characters and line breaks
    become a space, `<`, `>` and `&` HTML entities, every other ASCII punctuation backslash-escaped.

    >>> markdown_text("<img src=x onerror=alert(1)>|[a](http://evil)")
    '&lt;img src\\=x onerror\\=alert\\(1\\)&gt;\\|\\[a\\]\\(http\\:\\/\\/evil\\)'
    """
    return _PUNCTUATION.sub(r"\\\1", html.escape(_CONTROL.sub(" ", text), quote=False))
