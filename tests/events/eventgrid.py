"""Event Grid / CloudEvents bodies shaped like Azure's documented examples (Azurite emits none)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def blob_created(
    account: str,
    container: str,
    blob: str,
    *,
    event_id: str | None = None,
    api: str = "PutBlockList",
    size: int = 1000,
    at: datetime | None = None,
    event_type: str = "Microsoft.Storage.BlobCreated",
    endpoint: str | None = None,
) -> dict:
    """One event in the Event Grid schema; `endpoint` replaces `https://ACCOUNT.blob.core.windows.net`."""
    return {
        "topic": f"/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{account}",
        "subject": f"/blobServices/default/containers/{container}/blobs/{blob}",
        "eventType": event_type,
        "eventTime": (at or T0).isoformat().replace("+00:00", "Z"),
        "id": event_id or str(uuid.uuid4()),
        "data": {
            "api": api,
            "clientRequestId": str(uuid.uuid4()),
            "requestId": str(uuid.uuid4()),
            "eTag": "0x8D4BCC2E4835CD0",
            "contentType": "application/octet-stream",
            "contentLength": size,
            "blobType": "BlockBlob",
            "url": f"{endpoint or f'https://{account}.blob.core.windows.net'}/{container}/{quote(blob)}",
            "sequencer": "00000000000004420000000000028963",
            "storageDiagnostics": {"batchId": "b68529f3-68cd-4744-baa4-3c0498ec19f0"},
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }


def as_cloudevent(event: dict) -> dict:
    """The same event in CloudEvents 1.0."""
    return {
        "specversion": "1.0",
        "type": event["eventType"],
        "source": event["topic"],
        "id": event["id"],
        "time": event["eventTime"],
        "subject": event["subject"],
        "data": event["data"],
    }


def dataset_burst(account: str, container: str, prefix: str, files: int, *, marker: str | None = "_READY") -> list[dict]:
    """A dataset upload: `files` images and labels, then the marker (one second after the last)."""
    events = [
        blob_created(account, container, f"{prefix}/{'images' if i % 2 else 'labels'}/{i:06d}.bin",
                     at=T0 + timedelta(milliseconds=i))
        for i in range(files)
    ]
    if marker:
        events.append(blob_created(account, container, f"{prefix}/{marker}", size=0, at=T0 + timedelta(seconds=files)))
    return events


def validation_event(code: str) -> list[dict]:
    return [
        {
            "id": str(uuid.uuid4()),
            "topic": "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
            "subject": "",
            "data": {"validationCode": code, "validationUrl": "https://rp-eastus2.eventgrid.azure.net/x"},
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": T0.isoformat(),
            "metadataVersion": "1",
            "dataVersion": "1",
        }
    ]


def body(events: list[dict] | dict) -> bytes:
    return json.dumps(events).encode()


#: The media types Event Grid labels its deliveries with (docs/events.md).
MEDIA = {
    "eventgrid": "application/json; charset=utf-8",
    "cloudevents": "application/cloudevents+json; charset=utf-8",
    "cloudevents-batch": "application/cloudevents-batch+json; charset=utf-8",
}


def delivery(events: list[dict] | dict, schema: str = "eventgrid") -> dict:
    """httpx keyword arguments of one webhook POST: the body and its Content-Type."""
    return {"content": body(events), "headers": {"content-type": MEDIA[schema]}}
