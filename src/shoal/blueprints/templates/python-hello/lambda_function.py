"""Hello world: the smallest Python function. Invoke it with {"name": "Shoal"}."""

from __future__ import annotations

import json
import os
from typing import Any


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    name = event.get("name") if isinstance(event, dict) else None
    name = name or "world"
    # Everything a function prints goes to its log stream: `shoal logs FUNCTION` shows it.
    print(json.dumps({"level": "INFO", "message": "greeting", "name": name}))
    return {
        "message": f"Hello, {name}!",
        "requestId": context.aws_request_id,
        "runtime": os.environ.get("AWS_EXECUTION_ENV", ""),
    }
