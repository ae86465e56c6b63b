"""The FunctionConfig that tests build, with the literal defaults they share."""

from __future__ import annotations

from typing import Any

from shoal.core.types import FunctionConfig

SHA = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # base64 of the SHA-256 of no bytes


def function_config(*, runtime: str, **overrides: Any) -> FunctionConfig:
    """A FunctionConfig for ``runtime`` with the shared test defaults; ``overrides`` replace any field."""
    fields: dict[str, Any] = {
        "account_id": "123456789012",
        "name": "f",
        "role": "r",
        "handler": "app.handler",
        "code_sha256": SHA,
        "code_size": 1,
        "last_modified": "x",
        "revision_id": "r1",
        "timeout": 3,
    }
    fields.update(overrides)
    return FunctionConfig(runtime=runtime, **fields)
