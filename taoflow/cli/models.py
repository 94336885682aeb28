"""`taoflow models list APP_LOCATION` and `taoflow models show APP_LOCATION [VERSION]`: the lineage of
an application's models (`OUTPUT/MODEL_APP_NAME`, local or blob), read from the registry's model
cards and champion pointer. No server needed.

Credentials as for `taoflow sync`: `--credentials BLOCK`, else env AZURE_STORAGE_CONNECTION_STRING,
else a SAS in the URL or DefaultAzureCredential.
"""

from __future__ import annotations

from typing import Optional

import typer

from taoflow.cli.output import err_console, out_console, plain, print_json

models_app = typer.Typer(help="The models of an application: versions, metrics, the champion (the registry).",
                         no_args_is_help=True)

_APP = typer.Argument(..., metavar="APP_LOCATION",
                      help="OUTPUT/MODEL_APP_NAME: a local folder, az://, https://...blob... or azureml:// location.")
_CREDENTIALS = typer.Option(
    None, "--credentials", "-c", metavar="BLOCK",
    help="Name of a Prefect AzureBlobStorageCredentials block (default: env AZURE_STORAGE_CONNECTION_STRING).",
)
_JSON = typer.Option(False, "--json", help="Print JSON on stdout.")


def register(app: typer.Typer) -> None:
    """Add `taoflow models` to the root app."""
    app.add_typer(models_app, name="models")


def _access(credentials: str | None):
    from tasks.storage import StorageAccess

    return StorageAccess(credentials=credentials)


def _champion(app_location: str, access):
    """The champion, or None with a warning when champion.json cannot be read: the versions are
    still listed and shown (the pointer's fix says to restore it from them)."""
    from tasks.registry.catalog import champion_or_problem

    champion, problem = champion_or_problem(app_location, access)
    if problem is not None:
        err_console.print(f"warning: no version is marked champion: {problem.render()}", markup=False)
    return champion


@models_app.command("list")
def list_(app_location: str = _APP, credentials: Optional[str] = _CREDENTIALS, as_json: bool = _JSON) -> None:
    """Every published version, oldest first: time, mAP on its held-out data, the champion (*), dataset."""
    from tasks.registry import list_versions

    access = _access(credentials)
    _champion(app_location, access)
    rows = list_versions(app_location, access)
    if as_json:
        print_json([row.model_dump(mode="json") for row in rows])
        return
    if not rows:
        out_console.print(f"no published model with a model card at {app_location}", markup=False)
        return
    table = [("", "version", "time (UTC)", "mAP %", "dataset", "held out on")]
    table += [("*" if row.champion else "", row.version, row.created_at.replace("+00:00", "Z"),
               f"{row.mean_average_precision:.2f}", row.dataset_fingerprint[:12], row.held_out) for row in rows]
    _print_table(table, numbers={3})
    out_console.print(f"{len(rows)} version(s); * = champion", markup=False)


def _print_table(table: list[tuple[str, ...]], numbers: set[int], indent: str = "") -> None:
    """Columns as wide as their longest cell, whatever the terminal: a version name or a SHA-256 is
    never cut (two versions started in the same second differ only in their last characters)."""
    widths = [max(len(cells[i]) for cells in table) for i in range(len(table[0]))]
    for cells in table:
        line = "  ".join(cell.rjust(w) if i in numbers else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths)))
        out_console.print(indent + line.rstrip(), markup=False, highlight=False, crop=False, overflow="ignore")


@models_app.command("show")
def show(
    app_location: str = _APP,
    version: Optional[str] = typer.Argument(None, help="The version (model folder); default: the champion."),
    credentials: Optional[str] = _CREDENTIALS,
    as_json: bool = _JSON,
) -> None:
    """One version's model card: metrics per class, the verdict, datasets, spec, base model, TAO image, and
    the chain after training (which model ships and why, each step's mAP, size and pruning ratio, every
    file with its SHA-256)."""
    from tasks.registry import read_card

    access = _access(credentials)
    card = read_card(app_location, version, access)
    if as_json:
        print_json(card.model_dump(mode="json"))
        return
    champion = _champion(app_location, access)
    out = out_console
    mark = " (champion)" if champion is not None and champion.version == card.version else ""
    out.print(f"[bold]{card.version}[/bold]{mark}  run {card.run_id}  {card.created_at}", highlight=False)
    out.print(f"model: {card.model}   epochs: {card.num_epochs}", markup=False)
    e = card.evaluation
    out.print(f"mAP {e.mean_average_precision:.2f} % on {e.held_out.source} ({e.held_out.fingerprint[:12]})",
              markup=False)
    verdict = card.verdict
    compared = {c.name: c for c in verdict.classes}
    for name, ap in sorted(e.average_precision.items()):
        check = compared.get(name)
        versus = f"   champion {check.champion:6.2f} ({check.change:+.2f})" if check and check.champion is not None else ""
        out.print(f"  {name:<20} AP {ap:6.2f} %{versus}", markup=False)
    against = f" against {card.compared_with}" if card.compared_with else " (no champion to compare with)"
    out.print(f"verdict{against}: {'promote' if verdict.promote else 'do not promote'}", markup=False)
    for reason in verdict.reasons:
        out.print(f"  - {reason}", markup=False)
    out.print(f"dataset: {card.dataset_fingerprint[:12]}   spec sha256: {card.spec_sha256[:12]}", markup=False)
    base = card.base_model
    if base.get("location"):
        out.print(f"base model: {base.get('pretrained_model_file')} from {base.get('location')}", markup=False)
    out.print(f"TAO image: {card.tao_image}" + (f" @ {card.tao_image_digest}" if card.tao_image_digest else ""),
              markup=False)
    if card.chain is not None:
        _print_chain(card.chain)


def _number(value: float | None, digits: int) -> str:
    return f"{value:.{digits}f}" if value is not None else "-"


def _print_chain(chain) -> None:
    """Which model ships and why, each step's numbers, and every file the chain published with its SHA-256."""
    from tasks.report import chain_summary
    from tasks.report.chain_view import step_label

    summary = chain_summary(chain)
    for line in (f"chain: the {chain.shipped} model ships: {chain.decision}",
                 f"compared with the champion: {chain.compared_on}"):
        out_console.print(plain(line), markup=False, highlight=False, crop=False, overflow="ignore")
    table = [("step", "mAP %", "size MB", "params M", "pruning ratio")]
    table += [(step_label(summary, s), _number(s.mean_average_precision, 2), _number(s.size_mb, 2),
               _number(s.param_count, 2), _number(s.pruning_ratio, 3)) for s in summary.steps]
    _print_table(table, numbers={1, 2, 3, 4}, indent="  ")
    if chain.artifacts:
        out_console.print("files (relative to the version folder):", markup=False)
        table = [("step", "kind", "size MB", "sha256", "path")]
        table += [(a.step, plain(a.kind), f"{a.size_mb:.2f}", plain(a.sha256), plain(a.path)) for a in chain.artifacts]
        _print_table(table, numbers={2}, indent="  ")
