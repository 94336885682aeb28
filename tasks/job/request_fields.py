"""The field types that keep a `TrainRequest` safe to store and to publish under its output.

- `PathComponent`: the names that become folders and files under the output
  (`model_app_name`, `model_subfolder`, `model_name`, `log_file`) are one path component of a
  small character set, so no value can climb out of the output folder (`..`), cut a URL short
  (`#`) or replace its SAS (`?sv=...`).
- `Location`: Prefect stores a deployment run's parameters and shows them in the UI, so the JSON
  schema of a location refuses a URL with a query string (a SAS token) and the Prefect server
  refuses such a run before storing anything. In-process runs (`taoflow run`) may still use a
  SAS; their stored parameters show it masked.
- `join_location`: the one way a location is extended by names (results = OUTPUT/APP/SUBFOLDER,
  the AzureML component's DIR/SUBDIR), refusing any part that could leave the base.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PlainSerializer

from tasks.errors import ConfigError
from tasks.redact import scrub

#: How to give the TAO key to a deployment run (it is never one of its parameters).
KEY_ADVICE = (
    "store the TAO key in a Prefect Secret block (`prefect block create secret`, or the UI: Blocks -> Secret) "
    "and give the block's name as key_block, or set TAO_KEY in the environment of the worker that runs the flow"
)
#: How to give blob access to a deployment run (a SAS in its parameters would be stored).
SAS_ADVICE = (
    "give blob access through storage_credentials (an AzureBlobStorageCredentials block) or "
    "AZURE_STORAGE_CONNECTION_STRING on the worker, and write the location without its ?query"
)

# A URL with a query string or fragment: the query would be a SAS token (no other query is
# accepted), a fragment silently cuts the path. JSON-schema only: in-process runs may use a SAS.
_NO_URL_QUERY = r"^(?![A-Za-z][A-Za-z0-9+.-]*://[^?#]*[?#])"

# Whenever a request is turned into JSON (Prefect stores an in-process flow run's parameters that
# way, the UI shows them), a SAS signature or account key in a location is masked, like the key
# itself. The deployments' schema refuses such a location outright (`_NO_URL_QUERY`).
Location = Annotated[
    str,
    PlainSerializer(lambda value: scrub(value), when_used="json"),
    Field(json_schema_extra={"pattern": _NO_URL_QUERY}),
]

#: One folder or file name: what model_app_name, model_subfolder, model_name and log_file may be.
PATH_COMPONENT = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
# A path segment may have 255 bytes (ext4, xfs, NTFS); TAO adds suffixes to model_name (.hdf5, .tlt).
MAX_COMPONENT = 200
ALLOWED_COMPONENT = (
    f"1-{MAX_COMPONENT} characters from A-Z a-z 0-9 . _ -, starting with a letter or digit "
    "(so never '.' or '..', and no '/', '\\', spaces, '#' or '?')"
)


def _one_path_component(value: str) -> str:
    if len(value) > MAX_COMPONENT or not re.fullmatch(PATH_COMPONENT.strip("^$"), value):
        raise ValueError(f"must be one folder or file name: {ALLOWED_COMPONENT}")
    return value


PathComponent = Annotated[
    str,
    AfterValidator(_one_path_component),
    Field(json_schema_extra={"pattern": PATH_COMPONENT, "maxLength": MAX_COMPONENT}),
]



def has_url_query(location: str) -> bool:
    """Whether `location` is a URL with a query string (a SAS token) or a fragment.

    >>> has_url_query("https://a.blob.core.windows.net/c/p?sv=1&sig=x"), has_url_query("/data/what?")
    (True, False)
    """
    return re.match(_NO_URL_QUERY, location) is None


def join_location(base: str, *parts: str) -> str:
    """Join path segments onto a local path or URL, keeping a URL's query (a SAS token) at the end.

    A part that could leave `base` or change what the URL means is a `ConfigError` (see
    `join_problem`): the joined location is always inside `base`.

    >>> join_location("https://a.blob.core.windows.net/models?sv=1&sig=x", "app", "run-1")
    'https://a.blob.core.windows.net/models/app/run-1?sv=1&sig=x'
    """
    query = ""
    if "://" in base and "?" in base:
        base, query = base.split("?", 1)
        query = "?" + query
    out = base
    for part in parts:
        part = str(part).strip()
        if not part:
            continue
        why = join_problem(part)
        if why:
            raise ConfigError(f"cannot put {part!r} under {scrub(base)}: {why}",
                              fix="give a relative folder name without those characters")
        out = out.rstrip("/") + "/" + part.lstrip("/")
    return out + query


def join_problem(part: str) -> str | None:
    """Why `part` (one or more '/'-separated folder names) cannot be joined under a location, or None.

    >>> join_problem("kitti/training"), join_problem("../etc")
    (None, "it has a '.' or '..' segment")
    """
    if any(ch in part for ch in "?#\\") or any(ord(ch) < 32 or ord(ch) == 127 for ch in part):
        return "it contains '?', '#', a backslash or a control character, which would change the location"
    if any(segment in {".", ".."} for segment in part.strip("/").split("/")):
        return "it has a '.' or '..' segment"
    return None


def parse_gpu_index(value: Any) -> Any:
    """Accept 0, "0", "0,1", "0 1", [0, 1] — the forms pipelines pass — as a list of ints.

    >>> parse_gpu_index("0, 1"), parse_gpu_index(2), parse_gpu_index("")
    ([0, 1], [2], [])
    """
    if value is None or value == "":
        return []
    if isinstance(value, bool):
        return value  # let pydantic reject it
    if isinstance(value, int):
        return [value]
    if isinstance(value, str):
        tokens = [t for t in re.split(r"[,\s]+", value.strip().strip("[]")) if t]
        try:
            return [int(t) for t in tokens]
        except ValueError:
            return value  # pydantic will say it is not a list of ints
    return value
