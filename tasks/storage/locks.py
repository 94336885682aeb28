"""One publisher at a time per target: a blob lease remotely, a lock file locally.

Two uploads to the same prefix used to interleave: each deleted the other's markers and the last
to finish wrote a completion marker listing *its* checksums over blobs partly written by the
other, so readers failed on MD5. Now an upload first takes the right to publish:

- at a blob prefix: a 60 s lease on its `_taoflow_publishing.json` marker (created if missing),
  renewed every 20 s while the upload runs and once more right before the completion marker is
  written; a second publisher waits for the lease (`StorageBusyError` after `wait` seconds). A
  publisher killed with SIGKILL leaves its lease to expire within 60 s; the marker it leaves
  keeps readers away from the half-written prefix until the next publication completes;
- in a local folder: `flock` on the folder's lock file (the kernel drops it when the holder dies).

Cost per publication that changes something: 2 extra requests (create the marker, take the
lease) and one renewal per 20 s; an unchanged re-publication takes no lock at all.
"""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Callable, Protocol

from tasks.errors import PublicationLeaseLost, StorageBusyError
from tasks.storage.azure_errors import Target, azure_errors
from tasks.storage.localfs import LocalTree

#: Renewed every third of it, so two renewals may fail before it is lost; short enough that a re-run
#: after a killed publisher waits at most this long. The registry's champion lock uses the same.
LEASE_SECONDS = 30
_RENEW_EVERY = LEASE_SECONDS / 3
Notice = Callable[[str], None]
#: The marker a publisher holds (a lease on it, or written under the folder's lock) while it
#: changes a target; readers keep away from a prefix that has it (tasks.storage.visibility).
PUBLISHING_MARKER = "_taoflow_publishing.json"


class Publication(Protocol):
    """Held while publishing; `confirm` right before the completion marker, `finish` after it."""

    def changing(self) -> None: ...
    def confirm(self) -> None: ...
    def finish(self) -> None: ...
    def __enter__(self) -> "Publication": ...
    def __exit__(self, *exc) -> None: ...


class _Marker:
    """What both kinds share: the publishing marker stays after a failure once content changed."""

    changed = False
    finished = False

    def changing(self) -> None:
        """Called before the first change to the target: from then on a failure leaves the marker."""
        self.changed = True


class BlobPublication(_Marker):
    """The lease on a prefix's publishing marker (see the module doc)."""

    def __init__(self, marker, body: bytes, wait: float, target: Target, notice: Notice | None = None) -> None:
        self.marker, self.body, self.wait, self.target, self.notice = marker, body, wait, target, notice
        self.lease = None
        self._lost: BaseException | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __enter__(self) -> "BlobPublication":
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        deadline = time.monotonic() + self.wait
        told = False
        with azure_errors(self.target, "taking the right to publish"):
            while self.lease is None:
                created = False
                try:
                    self.marker.upload_blob(self.body, overwrite=False)
                    created = True
                except ResourceExistsError:
                    pass  # held by another publisher, or left by one that was killed
                except HttpResponseError as exc:
                    if exc.status_code != 412:
                        raise
                try:
                    self.lease = self.marker.acquire_lease(lease_duration=LEASE_SECONDS)
                except HttpResponseError as exc:
                    if exc.status_code not in (404, 409):  # 404: its holder just finished; 409: leased
                        raise
                    told = self._wait(deadline, told)
            if not created:
                self.marker.upload_blob(self.body, overwrite=True, lease=self.lease)
        self._renewer = threading.Thread(target=self._renew_loop, name="taoflow-lease", daemon=True)
        self._renewer.start()
        return self

    def _wait(self, deadline: float, told: bool) -> bool:
        if time.monotonic() >= deadline:
            raise StorageBusyError(
                f"another upload is publishing at this prefix ({self._holder()}) and did not finish "
                f"within {self.wait:.0f} s",
                where=self.target.where,
                fix="wait for it and run again; if that upload was killed, its lease expires within "
                f"{LEASE_SECONDS} s and a re-run takes over",
            )
        if not told and self.notice is not None:
            self.notice(f"waiting for another upload to {self.target.where} to finish ({self._holder()})")
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        return True

    def _holder(self) -> str:
        try:
            # Only the first 4 KB: the holder's note is a line; a planted giant is not read whole.
            info = json.loads(self.marker.download_blob(offset=0, length=4096).readall())
            return f"pid {info['pid']} on {info['host']}, started {time.strftime('%H:%M:%S', time.localtime(info['started']))}"
        except Exception:  # noqa: BLE001 - only for the message
            return "holder unknown"

    def _renew_loop(self) -> None:
        while not self._stop.wait(_RENEW_EVERY):
            try:
                self.lease.renew()
            except Exception as exc:  # noqa: BLE001 - reported by confirm()
                self._lost = exc
                return

    def confirm(self) -> None:
        """Renew now: after this the lease is ours for a full period, time to write the marker."""
        if self._lost is None:
            try:
                self.lease.renew()
                return
            except Exception as exc:  # noqa: BLE001
                self._lost = exc
        raise PublicationLeaseLost(
            f"the lease on the publishing marker was lost while uploading ({type(self._lost).__name__}: the process "
            "stalled past the lease, or the storage service restarted); the completion marker was not written",
            where=self.target.where,
            fix="run the upload again (the step retries it by itself): it takes a new lease and uploads what is missing",
        )

    def finish(self) -> None:
        """Delete the publishing marker (and with it the lease): the prefix is published."""
        with azure_errors(self.target, "finishing the publication"):
            self.marker.delete_blob(lease=self.lease)
        self.finished = True

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.finished:
            return
        try:
            if exc[0] is not None and not self.changed:
                self.marker.delete_blob(lease=self.lease)  # nothing changed: no trace
            else:
                self.lease.release()  # the marker stays: readers keep away until a publication completes
        except Exception:  # noqa: BLE001 - the lease expires by itself
            pass


class LocalPublication(_Marker):
    """The lock file of a local folder, then the publishing marker in it."""

    def __init__(self, tree: LocalTree, body: bytes, wait: float, notice: Notice | None = None) -> None:
        self.tree, self.body, self.wait, self.notice = tree, body, wait, notice
        self.name = PUBLISHING_MARKER
        self._lock = None

    def __enter__(self) -> "LocalPublication":
        self._lock = self.tree.lock(self.wait, self.notice)
        self._lock.__enter__()
        self.tree.clear_staging()
        self.tree.write_from(self.name, io.BytesIO(self.body))
        return self

    def confirm(self) -> None:
        """Nothing to renew: the lock file is held until the process ends."""

    def finish(self) -> None:
        self.tree.unlink(self.name)
        self.finished = True

    def __exit__(self, *exc) -> None:
        try:
            if not self.finished and exc[0] is not None and not self.changed:
                self.tree.unlink(self.name)
            self.tree.clear_staging()
        finally:
            self._lock.__exit__(*exc)
