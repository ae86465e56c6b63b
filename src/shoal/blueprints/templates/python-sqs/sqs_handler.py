"""An Amazon SQS batch handler that reports partial batch failures.

The event source mapping sends up to BatchSize messages as ``{"Records": [...]}``. With
``FunctionResponseTypes=["ReportBatchItemFailures"]`` on the mapping, the function answers
``{"batchItemFailures": [{"itemIdentifier": "<messageId>"}, ...]}``: only those messages go back to the
queue for another try; the others are deleted. An empty list means the whole batch succeeded. (Without that
setting any error fails, and retries, the whole batch.)

Each message body here is an order, ``{"orderId": "...", "amount": <positive number>}``; a body that is not
JSON or not a valid order fails that one message. Put the real work in ``process``. On a FIFO queue
(``….fifo``) the first failure stops the batch and every message after it is reported too, so that order
within a message group is kept.
"""

from __future__ import annotations

import json
from typing import Any


class InvalidMessage(ValueError):
    """A message this function cannot process."""


def process(message_id: str, body: str) -> None:
    try:
        order = json.loads(body)
    except ValueError:
        raise InvalidMessage("the body is not JSON") from None
    if not isinstance(order, dict) or not isinstance(order.get("orderId"), str):
        raise InvalidMessage("the order has no orderId")
    amount = order.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount <= 0:
        raise InvalidMessage(f"order {order['orderId']}: the amount must be a positive number")
    print(json.dumps({"level": "INFO", "message": "order processed", "orderId": order["orderId"]}))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    records = event.get("Records", [])
    failures: list[dict[str, str]] = []
    for index, record in enumerate(records):
        message_id = record["messageId"]
        try:
            process(message_id, record["body"])
        except Exception as exc:  # one bad message must not fail the others
            log = {"level": "ERROR", "message": "message failed", "messageId": message_id, "error": str(exc)}
            print(json.dumps(log))
            failures.append({"itemIdentifier": message_id})
            if str(record.get("eventSourceARN", "")).endswith(".fifo"):
                failures.extend({"itemIdentifier": r["messageId"]} for r in records[index + 1 :])
                break
    return {"batchItemFailures": failures}
