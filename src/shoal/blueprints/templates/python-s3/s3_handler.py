"""A handler for Amazon S3 event notifications (ObjectCreated:*, ObjectRemoved:* …).

S3 invokes the function asynchronously with ``{"Records": [...]}``, one record per object event. The object
key in a record is URL-encoded (a space arrives as ``+`` or ``%20``, a ``+`` as ``%2B``): decode it with
``unquote_plus`` before using it. ObjectRemoved records carry no ``size`` or ``eTag``.

Put the work on each object in ``handle_object``; returning normally acknowledges the event, raising makes
Lambda retry it (twice, for an asynchronous invoke).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus


def handle_object(event_name: str, bucket: str, key: str, size: int | None) -> str:
    """The work on one object; returns what was done."""
    if event_name.startswith("ObjectCreated:"):
        return f"would process s3://{bucket}/{key} ({size} bytes)"
    if event_name.startswith("ObjectRemoved:"):
        return f"would forget s3://{bucket}/{key}"
    return f"ignored {event_name} on s3://{bucket}/{key}"


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    processed = []
    for record in event.get("Records", []):
        if record.get("eventSource") != "aws:s3":
            print(json.dumps({"level": "WARN", "message": "not an S3 record", "record": record}))
            continue
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        key = unquote_plus(s3["object"]["key"])
        size = s3["object"].get("size")
        outcome = handle_object(record["eventName"], bucket, key, size)
        print(json.dumps({"level": "INFO", "message": outcome, "eventName": record["eventName"]}))
        processed.append(
            {"eventName": record["eventName"], "bucket": bucket, "key": key, "size": size, "outcome": outcome}
        )
    return {"processed": processed}
