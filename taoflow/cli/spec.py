"""`taoflow spec`: check, show and rewrite DetectNet_v2 spec files, no server needed.

Exit codes: 0 ok, 1 spec errors (printed as file:line:col), 2 usage errors.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from taoflow.cli.output import err_console, print_json
from tasks.errors import ConfigError, SpecError
from tasks.files import write_atomic
from tasks.spec import KINDS, check_spec, extract_facts, parse_spec, require_valid, rewrite_spec

spec_app = typer.Typer(help="Check, inspect and rewrite DetectNet_v2 spec files.", no_args_is_help=True)

_KIND = typer.Option("train", "--kind", help="Spec kind: train (experiment spec) or dataset_convert.")
_SPEC = typer.Argument(..., help="The spec file.")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(spec_app, name="spec")


def _read(spec: Path, kind: str):
    if kind not in KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    try:
        data = spec.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{spec}: no such file", fix="give the path of the spec file") from None
    except OSError as exc:
        raise ConfigError(f"{spec}: cannot read it ({exc.strerror})") from None
    return parse_spec(data, str(spec), kind)


@spec_app.command("check")
def check(
    spec: Path = _SPEC,
    kind: str = _KIND,
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON on stdout (exit status unchanged)."),
) -> None:
    """Check a spec against TAO 5's schema and validator rules; list every problem."""
    doc = _read(spec, kind)
    problems = check_spec(doc)
    errors = [p for p in problems if p.severity == "error"]
    if as_json:
        # A script reads one document whatever the verdict; the exit status still says ok (0) or not (1).
        print_json({"spec": str(spec), "kind": kind, "ok": not errors, "problems": [p.to_dict() for p in problems]})
        if errors:
            raise typer.Exit(1)
        return
    for p in problems:
        err_console.print(p.render(), markup=False)
    if errors:
        raise SpecError(f"{spec}: {len(errors)} error(s) in the {kind} spec", fix="correct the lines listed above")
    typer.echo(f"{spec}: ok ({kind} spec, {len(problems)} warning(s))")


_FACTS_AS_JSON = typer.Option(False, "--json", help="Print the facts as JSON.")


@spec_app.command("show")
def show(spec: Path = _SPEC, kind: str = _KIND, as_json: bool = _FACTS_AS_JSON) -> None:
    """Print the facts later steps use: image size, classes, paths, epochs."""
    facts = extract_facts(_read(spec, kind))
    if as_json:
        print_json(facts.to_dict())
        return
    for name, value in facts.to_dict().items():
        if name == "path_fields":
            for pf in value:
                typer.echo(f"path {pf['field']} = {pf['value']}  (line {pf['line']})")
        elif value not in (None, "", 0, 0.0, [], {}, False):
            typer.echo(f"{name}: {value}")


def _pairs(values: list[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} {item!r}: expected KEY=VALUE", fix=f"e.g. {option} /workspace/data=/mnt/data")
        out[key.strip()] = value
    return out


@spec_app.command("rewrite")
def rewrite(
    spec: Path = _SPEC,
    maps: list[str] = typer.Option([], "--map", help="REF=ACTUAL: rebase spec paths under REF onto ACTUAL (repeatable)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Set training_config.num_epochs."),
    sets: list[str] = typer.Option([], "--set", help="FIELD.PATH=VALUE: set one field, e.g. training_config.batch_size_per_gpu=8."),
    out: Path = typer.Option(..., "-o", "--output", help="Where to write the rewritten spec (never the input itself)."),
    kind: str = _KIND,
    diff: bool = typer.Option(False, "--diff", help="Print the unified diff to stdout."),
) -> None:
    """Rewrite a spec's paths, epochs and fields; every other byte stays as written."""
    rebasings, overrides = _pairs(maps, "--map"), _pairs(sets, "--set")
    if out.exists() and spec.exists() and os.path.samefile(out, spec):
        raise ConfigError(f"-o {out} is the input spec itself", fix="write to another file; the original stays untouched")
    doc = _read(spec, kind)
    result = rewrite_spec(doc, rebasings, epochs, overrides)
    require_valid(parse_spec(result.text, f"{spec} (rewritten)", kind))
    _write_atomically(out, result.text)
    if diff:
        sys.stdout.write(result.diff)
    for c in result.changes:
        err_console.print(f"{spec}:{c.line}: {c.field}: {c.old!r} -> {c.new!r}", markup=False)
    err_console.print(f"wrote {out} ({len(result.changes)} change(s))", markup=False)


def _write_atomically(path: Path, text: str) -> None:
    """Temp file in the same folder, then rename: a reader sees the old file or the new, never half."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"-o {path}: folder {folder} does not exist")
    write_atomic(path, text, durable=True)
