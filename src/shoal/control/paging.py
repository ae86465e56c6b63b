"""Offset pagination for list operations whose marker is opaque to clients (spec §1.1)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

from shoal.core.errors import InvalidParameterValueException

LIST_PAGE = 50  # the most items one page holds, whatever MaxItems asks for

T = TypeVar("T")


def offset_page(items: Sequence[T], marker: str | None, max_items: int | None) -> tuple[list[T], str | None]:
    """One page of ``items`` from the offset ``marker`` encodes, and the marker of the next page (None at
    the end). A marker this did not make is InvalidParameterValueException."""
    start = 0
    if marker:
        try:
            start = int(base64.urlsafe_b64decode(marker.encode()).decode())
        except (ValueError, binascii.Error):
            raise InvalidParameterValueException(f"Invalid Marker: {marker}") from None
    end = start + min(max_items or LIST_PAGE, LIST_PAGE)
    next_marker = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return list(items[start:end]), next_marker
