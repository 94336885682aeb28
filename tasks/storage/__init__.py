"""Storage: locations (local, Azure Blob, AzureML datastores), incremental sync down, atomic sync up.

Plain functions on the sync Azure SDK; the Prefect task wrappers are in `tasks.storage.sync_tasks`.
"""

from tasks.storage.access import StorageAccess, open_store
from tasks.storage.locations import Location, parse_location
from tasks.storage.sync import content_fingerprint, is_published, materialize, sync_down, sync_up
from tasks.storage.transfer import SyncProgress, SyncReport

__all__ = [
    "Location",
    "StorageAccess",
    "SyncProgress",
    "SyncReport",
    "content_fingerprint",
    "is_published",
    "materialize",
    "open_store",
    "parse_location",
    "sync_down",
    "sync_up",
]
