"""A scheduled job: an EventBridge rule with a schedule expression invokes it, asynchronously, with

    {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "time": "2015-10-08T16:53:06Z",
     "resources": ["arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule"], "detail": {}, ...}

for example on ``rate(1 day)`` or ``cron(0 3 * * ? *)`` (03:00 UTC daily). The job here is a clean-up: it
works out the cut-off (the event's time minus ``RETENTION_DAYS``, an environment variable, 30 by default)
from the *scheduled* time in the event, never the clock, so a late or retried run does the same work. Put
the real deleting in ``clean_up``. Invoked by hand with another event (``{}``), it runs as of now.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any


def clean_up(cutoff: datetime) -> int:
    """Deletes what is older than ``cutoff``; returns how many things it deleted."""
    print(json.dumps({"level": "INFO", "message": "would delete records older than the cut-off"}))
    return 0


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    scheduled = event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"
    if scheduled:
        when = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        rule = event["resources"][0].rsplit("/", 1)[-1] if event.get("resources") else "unknown"
    else:
        when = datetime.now(UTC).replace(microsecond=0)
        rule = "manual"
    retention = int(os.environ.get("RETENTION_DAYS", "30"))
    cutoff = when - timedelta(days=retention)
    deleted = clean_up(cutoff)
    result = {
        "rule": rule,
        "scheduledTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "retentionDays": retention,
        "cutoff": cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "deleted": deleted,
    }
    print(json.dumps({"level": "INFO", "message": "scheduled job done", **result}))
    return result
