"""Presigned-style download URLs for ``GetFunction``'s ``Code.Location``, served by Shoal itself."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from pathlib import Path

EXPIRES_IN = 600  # seconds, like a presigned S3 URL from Lambda
PATH_PREFIX = "/_shoal/code/"
_SHA_RE = re.compile(r"[0-9a-f]{64}")


class CodeUrlSigner:
    def __init__(self, secret_file: Path) -> None:
        if not secret_file.exists():
            secret_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(32))
        self._key = secret_file.read_bytes()

    def _sign(self, sha_hex: str, expires: int) -> str:
        return hmac.new(self._key, f"{sha_hex}:{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, base_url: str, sha_hex: str, now: float | None = None) -> str:
        expires = int((now or time.time()) + EXPIRES_IN)
        signature = self._sign(sha_hex, expires)
        return f"{base_url.rstrip('/')}{PATH_PREFIX}{sha_hex}?Expires={expires}&Signature={signature}"

    def verify(self, sha_hex: str, expires: str, signature: str, now: float | None = None) -> bool:
        if not _SHA_RE.fullmatch(sha_hex) or not expires.isdigit():
            return False
        if int(expires) < (now or time.time()):
            return False
        return hmac.compare_digest(self._sign(sha_hex, int(expires)), signature)
