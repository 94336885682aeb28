"""Reading a registry (`OUTPUT/MODEL_APP_NAME/`): its versions, their cards, the champion.

A version is a published model folder (its `_taoflow_published.json` present) holding a
`model-card.json`; a folder still being published, or one from before the registry, is not listed.

Everything in a registry is untrusted input: every file is read through the application's folder
without following a link (a version folder that is a symlink is no version), with a size bound,
and a number that is not finite makes a pointer or a card damaged.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Callable, Iterable, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasks.errors import (
    StorageAuthError,
    StorageBusyError,
    StorageError,
    StorageNotFoundError,
    StorageUnreachableError,
    TransientStorageError,
    UntrustedEndpointError,
)
from tasks.job.request import join_location
from tasks.registry.card import CARD_FILE, MAX_CARD_BYTES, ModelCard
from tasks.registry.pointer import POINTER_FILE, PointerRead, read_pointer
from tasks.storage import StorageAccess, open_store, parse_location
from tasks.storage.manifest import MAX_MARKER_BYTES, PUBLISHED_MARKER
from tasks.storage.names import name_problem
from tasks.storage.stores import Store

CHAMPION_FORMAT = "taoflow.champion/1"
T = TypeVar("T")


class ChampionPointer(BaseModel):
    """The content of `champion.json`."""

    model_config = ConfigDict(allow_inf_nan=False)

    format: str = CHAMPION_FORMAT
    version: str = Field(description="The champion's folder under OUTPUT/MODEL_APP_NAME")
    run_id: str
    model: str = Field(description="The model file, relative to OUTPUT/MODEL_APP_NAME")
    card: str = Field(description="Its model card, relative to OUTPUT/MODEL_APP_NAME")
    mean_average_precision: float
    promoted_at: str
    previous: str | None = Field(default=None, description="The version it replaced")
    shipped: Literal["unpruned", "pruned"] = Field(
        default="unpruned", description="Whether its model is a pruned one (evaluate reads it with load_graph)")

    def to_json(self) -> bytes:
        return (json.dumps(self.model_dump(mode="json"), indent=2, allow_nan=False) + "\n").encode()


class VersionRow(BaseModel):
    """One line of `taoflow models list`."""

    version: str
    created_at: str
    mean_average_precision: float
    champion: bool
    dataset_fingerprint: str
    run_id: str
    held_out: str


def app_location(output: str, model_app_name: str) -> str:
    """OUTPUT/MODEL_APP_NAME: the registry of one application.

    >>> app_location("az://models", "parking")
    'az://models/parking'
    """
    return join_location(output, model_app_name)


def parse_pointer(read: PointerRead, where: str) -> ChampionPointer | None:
    """The pointer's content, None without a champion; a damaged pointer is one clear error."""
    if read.data is None:
        return None
    try:
        return ChampionPointer.model_validate_json(read.data)
    except ValidationError:
        raise StorageError(f"{POINTER_FILE} is damaged (not a champion pointer)", where=where,
                           fix="restore it from the model cards (taoflow models list), or delete it so the next "
                               "model that meets the floors becomes champion") from None


def read_champion(app: str, access: StorageAccess | None = None) -> ChampionPointer | None:
    """The current champion of the registry at `app`, or None.

    >>> import tempfile
    >>> read_champion(tempfile.mkdtemp()) is None
    True
    """
    return parse_pointer(read_pointer(app, access), _display(app))


#: Errors about reaching the storage, not about the pointer's content: never passed over.
_REACHING = (TransientStorageError, StorageAuthError, StorageNotFoundError, StorageUnreachableError,
             UntrustedEndpointError, StorageBusyError)


def champion_or_problem(app: str, access: StorageAccess | None = None) -> tuple[ChampionPointer | None,
                                                                                StorageError | None]:
    """(the champion or None, None), or (None, why champion.json cannot be read): damaged, too
    large, a link. Listing and showing versions do not need the pointer, so they go on and say so.

    >>> import tempfile, pathlib
    >>> app = pathlib.Path(tempfile.mkdtemp()); _ = (app / "champion.json").write_text("{")
    >>> champion_or_problem(str(app))[1].what
    'champion.json is damaged (not a champion pointer)'
    """
    return _or_problem(lambda: read_champion(app, access))


def _or_problem(read: Callable[[], T]) -> tuple[T | None, StorageError | None]:
    try:
        return read(), None
    except _REACHING:
        raise
    except StorageError as exc:
        return None, exc


def read_card(app: str, version: str | None = None, access: StorageAccess | None = None) -> ModelCard:
    """The card of `version`, or of the champion when `version` is None.

    >>> import tempfile
    >>> read_card(tempfile.mkdtemp(), "2026-11-25")
    Traceback (most recent call last):
    ...
    tasks.errors.StorageNotFoundError: ...: no published model version '2026-11-25' here
    ...
    """
    where = _display(app)
    if version is None:
        champion = read_champion(app, access)
        if champion is None:
            raise StorageNotFoundError("this registry has no champion yet", where=where,
                                       fix="name a version (taoflow models list shows them)")
        version = champion.version
    return version_card(open_store(app, access), version, where)


def version_card(store: Store, version: str, where: str) -> ModelCard:
    """The card of `version` in the registry `store` (OUTPUT/MODEL_APP_NAME), read through the
    registry's folder: a version folder that is a link, or a name that is not one folder, is none."""
    problem = name_problem(version)
    marker = None if problem or "/" in version else store.read(f"{version}/{PUBLISHED_MARKER}", MAX_MARKER_BYTES)
    if marker is None:
        raise StorageNotFoundError(f"no published model version {version!r} here", where=where,
                                   fix="taoflow models list shows the versions")
    data = store.read(f"{version}/{CARD_FILE}", MAX_CARD_BYTES)
    if data is None:
        raise StorageNotFoundError(f"version {version!r} has no {CARD_FILE} (published before the registry)",
                                   where=where, fix="retrain it with taoflow to give it a card")
    return _parse_card(data, f"the {CARD_FILE} of {version!r}", where)


def _parse_card(data: bytes, what: str, where: str) -> ModelCard:
    try:
        return ModelCard.model_validate_json(data)
    except ValidationError:
        raise StorageError(f"{what} is damaged", where=where, fix="republish the version") from None


def folder_card(location: str, access: StorageAccess | None = None) -> ModelCard | None:
    """The card inside one results folder (a version folder, published or not; `taoflow report`),
    None when it holds none; read as `version_card` reads one (no link followed, size bound).

    >>> import tempfile
    >>> folder_card(tempfile.mkdtemp()) is None
    True
    """
    where = _display(location)
    data = open_store(location, access).read(CARD_FILE, MAX_CARD_BYTES)
    return None if data is None else _parse_card(data, f"the {CARD_FILE} of {where}", where)


def folder_card_or_problem(location: str, access: StorageAccess | None = None) -> tuple[ModelCard | None,
                                                                                       StorageError | None]:
    """(the folder's card or None, None), or (None, why its card cannot be read: damaged, too large,
    a link): the report of a run is still drawn from what else the folder holds, and says so.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp()); _ = (folder / "model-card.json").write_text("{")
    >>> folder_card_or_problem(str(folder))[1].what.endswith("model-card.json of " + str(folder) + " is damaged")
    True
    """
    return _or_problem(lambda: folder_card(location, access))


def list_versions(app: str, access: StorageAccess | None = None) -> list[VersionRow]:
    """Every published version with a card, oldest first, the champion marked (none when
    champion.json cannot be read: `champion_or_problem` says why).

    >>> import tempfile
    >>> list_versions(tempfile.mkdtemp())  # an application with no published model yet
    []
    """
    store = open_store(app, access)
    champion, _ = champion_or_problem(app, access)
    rows = []
    for version in _versions_with_cards(store):
        card = version_card(store, version, _display(app))
        rows.append(VersionRow(version=version, created_at=card.created_at,
                               mean_average_precision=card.evaluation.mean_average_precision,
                               champion=champion is not None and champion.version == version,
                               dataset_fingerprint=card.dataset_fingerprint, run_id=card.run_id,
                               held_out=card.evaluation.held_out.source))
    return sorted(rows, key=lambda r: (r.created_at, r.version))


def cards_of_runs(app: str, run_ids: Iterable[str], access: StorageAccess | None = None) -> dict[str, ModelCard]:
    """The cards of the versions that these flow runs published, by run id (a card names its run).

    Found by the run id written in each card, not by folder name: a run's version folder is named
    when it runs. A version whose card cannot be read is skipped, so one damaged card does not hide
    the others; a run without a readable card is simply missing from the answer.

    >>> import tempfile
    >>> cards_of_runs(tempfile.mkdtemp(), ["0b6f3f4e-0000-0000-0000-000000000000"])
    {}
    """
    wanted = set(run_ids)
    found: dict[str, ModelCard] = {}
    store = open_store(app, access)
    for version in _versions_with_cards(store):
        try:
            card = version_card(store, version, _display(app))
        except StorageError as exc:
            if exc.transient:
                raise
            continue
        if card.run_id in wanted:
            found[card.run_id] = card
    return found


def _versions_with_cards(store: Store) -> list[str]:
    """The published version folders of the registry `store` that hold a card, by name (a version
    folder that is a symlink is not listed: the listing does not enter it)."""
    try:
        names = set(store.list().entries)
    except StorageNotFoundError:
        return []
    return sorted(n.rsplit("/", 1)[0] for n in names
                  if n.count("/") == 1 and n.endswith("/" + CARD_FILE) and
                  n.rsplit("/", 1)[0] + "/" + PUBLISHED_MARKER in names)


def new_pointer(card: ModelCard, current: ChampionPointer | None) -> ChampionPointer:
    """The pointer that makes `card`'s version the champion, remembering the one it replaces."""
    previous = current.previous if current and current.version == card.version else (current.version if current else None)
    return ChampionPointer(version=card.version, run_id=card.run_id, model=f"{card.version}/{card.model}",
                           card=f"{card.version}/{CARD_FILE}",
                           mean_average_precision=card.evaluation.mean_average_precision,
                           promoted_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), previous=previous,
                           shipped=card.chain.shipped if card.chain else "unpruned")


def _display(app: str) -> str:
    return parse_location(app).display
