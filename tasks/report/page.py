"""The report's sections, rendered two ways from one description: markdown for the Prefect
artifacts and one self-contained HTML file (every picture inline, no script, nothing fetched).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from tasks.report.chain_view import chain_chart, step_label
from tasks.report.contents import RunReport
from tasks.report.curves import comparison_picture, mean_ap, training_curves
from tasks.report.dataset_view import dataset_pictures
from tasks.report.picture import Picture, md_text

#: The HTML file may load nothing but its own inline pictures and style.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1320px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
figure{margin:12px 0}figcaption{font-weight:bold;margin-bottom:4px}img{max-width:100%;height:auto}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.meta{color:#555}.outcome{font-size:18px;font-weight:bold}
"""


@dataclass
class Section:
    """One part of the report: a heading, a line or two, pictures and an optional table."""

    key: str
    heading: str
    summary: str
    pictures: list[Picture] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        out = [f"# {md_text(self.heading)}", "", md_text(self.summary, 2000), ""]
        out += [f"- {md_text(line, 2000)}" for line in self.lines] + ([""] if self.lines else [])
        for picture in self.pictures:
            out += [picture.markdown(), ""]
        if self.header:
            out += ["| " + " | ".join(md_text(h) for h in self.header) + " |",
                    "|" + "---|" * len(self.header)]
            out += ["| " + " | ".join(md_text(c) for c in row) + " |" for row in self.rows]
        return "\n".join(out) + "\n"

    def html(self) -> str:
        out = [f"<section id=\"{self.key}\"><h2>{html.escape(self.heading)}</h2>",
               f"<p>{html.escape(self.summary)}</p>"]
        if self.lines:
            out.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in self.lines) + "</ul>")
        out += [picture.html() for picture in self.pictures]
        if self.header:
            out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in self.header) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self.rows]
            out.append("</table>")
        return "\n".join(out) + "</section>"


def _pct(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "–"


def comparison_section(report: RunReport) -> Section | None:
    comparison = report.comparison
    if comparison is None:
        return None
    champion = comparison.champion
    names = sorted(set(comparison.challenger) | set(champion or {}))
    rows = []
    for name in names:
        new, old = comparison.challenger.get(name), (champion or {}).get(name)
        change = f"{new - old:+.1f}" if new is not None and old is not None else "–"
        rows.append([name, _pct(old), _pct(new), change])
    new_map = comparison.challenger_map if comparison.challenger_map is not None else mean_ap(comparison.challenger)
    old_map = comparison.champion_map if comparison.champion_map is not None else mean_ap(champion or {})
    rows.append(["mAP", _pct(old_map), _pct(new_map),
                 f"{new_map - old_map:+.1f}" if new_map is not None and old_map is not None else "–"])
    outcome = comparison.outcome or "evaluated"
    against = "the champion" if champion is not None else "no champion (first model)"
    return Section("report-comparison", f"Champion vs new model: {outcome}",
                   f"{outcome}: new model mAP {_pct(new_map)} % against {against}"
                   + (f" at {_pct(old_map)} %" if champion is not None else "") + ", on the same held-out data.",
                   [comparison_picture(comparison)], ["class", "champion AP %", "new model AP %", "change"], rows,
                   list(comparison.reasons))


def _number(value: float | None, digits: int) -> str:
    return f"{value:.{digits}f}" if value is not None else "–"


def chain_section(report: RunReport) -> Section | None:
    chain = report.chain
    if chain is None:
        return None
    rows = [[step_label(chain, s), _pct(s.mean_average_precision), _number(s.size_mb, 2), _number(s.param_count, 2),
             _number(s.pruning_ratio, 3)] for s in chain.steps]
    lines = [f"compared with the champion: {chain.compared_on}"] if chain.compared_on else []
    return Section("report-chain", f"The chain: the {chain.shipped} model ships",
                   f"The {chain.shipped} model ships: {chain.decision}", [chain_chart(chain)],
                   ["step", "held-out mAP %", "size MB", "parameters (M)", "pruning ratio"], rows, lines)


def training_section(report: RunReport) -> Section | None:
    history = report.training
    if history is None:
        return None
    last = history.validations[-1] if history.validations else None
    summary = (f"{len(history.epochs)} epoch lines, {len(history.validations)} validations"
               + (f"; last validation (after epoch {last.epoch}): mAP {_pct(last.mean_ap)} %" if last else ""))
    rows = [[name, _pct(ap)] for name, ap in sorted(last.average_precision.items())] if last else []
    return Section("report-training", "Training curves", summary, [training_curves(history)],
                   ["class", "AP % at the last validation"] if rows else [], rows)


def dataset_section(report: RunReport) -> Section | None:
    dataset = report.dataset
    if dataset is None:
        return None
    scope = "every frame" if dataset.exact else f"a sample of {dataset.frames_sampled} frames"
    summary = f"{dataset.images_total} images in {dataset.data_dir}; {dataset.objects_sampled} objects, counted in {scope}."
    rows = [[c.name, c.target or "(not mapped: TAO drops it)", str(c.instances), str(c.images)]
            for c in dataset.classes]
    return Section("report-dataset", "Dataset", summary, dataset_pictures(dataset),
                   ["label class", "trained as", "objects", "frames"], rows)


def samples_section(report: RunReport) -> Section | None:
    if report.samples is None:
        return None
    return Section("report-samples", "Sample frames", f"{report.samples.alt}, with their KITTI boxes and classes.",
                   [report.samples])


def report_sections(report: RunReport) -> list[Section]:
    """The sections the report has data for, in reading order: outcome first, data last."""
    makers = (comparison_section, chain_section, training_section, dataset_section, samples_section)
    return [section for make in makers if (section := make(report)) is not None]


def render_html_report(report: RunReport) -> str:
    """One self-contained HTML page: the pictures inline as data: URIs, no script, nothing fetched.

    >>> "<h1>demo</h1>" in render_html_report(RunReport(title="demo"))
    True
    """
    sections = report_sections(report)
    meta = [f"made {report.created}"]
    if report.run_id:
        meta.append(f"flow run {report.run_id}")
    if report.results_location:
        meta.append(f"model at {report.results_location}")
    body = [f"<h1>{html.escape(report.title)}</h1>", f"<p class=\"meta\">{html.escape(' · '.join(meta))}</p>"]
    if report.comparison and report.comparison.outcome:
        body.append(f"<p class=\"outcome\">{html.escape(report.comparison.outcome)}</p>")
    body += [f"<p>{html.escape(note)}</p>" for note in report.notes]
    if not sections:
        body.append("<p>Nothing was recorded for this run yet.</p>")
    body += [section.html() for section in sections]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            f"<title>{html.escape(report.title)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
