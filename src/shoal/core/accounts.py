"""Accounts and the access keys that act for them (stdlib only).

A credentials file has one access key a line::

    # ACCESS_KEY_ID         SECRET_ACCESS_KEY                           ACCOUNT_ID
    AKIAIOSFODNN7EXAMPLE    wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY    123456789012
    ci-runner               another-long-secret                         210987654321   # a trailing comment

Blank lines and lines starting with ``#`` are ignored; a fourth field that starts with ``#`` begins a
comment. Several keys may act for one account. Errors name the file and the line, never the secret.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("shoal.accounts")

# What can stand before the first "/" of "Credential=AKID/20240101/us-east-1/lambda/aws4_request".
_KEY_ID_RE = re.compile(r"[A-Za-z0-9._+\-]{1,128}")
_ACCOUNT_RE = re.compile(r"[0-9]{12}")


class CredentialsFileError(ValueError):
    """A credentials file Shoal cannot use; the message names the file, the line and what to fix."""


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    secret_access_key: str = field(repr=False)  # never in logs or tracebacks
    account_id: str


def check_account_id(account_id: str) -> str:
    """``account_id`` when it is 12 digits, else :class:`ValueError` saying so."""
    if not _ACCOUNT_RE.fullmatch(account_id):
        raise ValueError(f"account id must be 12 digits, got {account_id!r}")
    return account_id


class CredentialStore:
    """Access key id → :class:`Credential`, immutable once built."""

    def __init__(self, credentials: Iterable[Credential] = ()) -> None:
        self._by_key: dict[str, Credential] = {}
        for cred in credentials:
            if not _KEY_ID_RE.fullmatch(cred.access_key_id):
                raise ValueError(f"access key id {cred.access_key_id!r} is not 1-128 of A-Z a-z 0-9 . _ + -")
            if not cred.secret_access_key or any(c.isspace() for c in cred.secret_access_key):
                raise ValueError(f"the secret of {cred.access_key_id} must be non-empty, without spaces")
            check_account_id(cred.account_id)
            if cred.access_key_id in self._by_key:
                raise ValueError(f"access key id {cred.access_key_id} is given twice")
            self._by_key[cred.access_key_id] = cred

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> CredentialStore:
        """Parse a credentials file; :class:`CredentialsFileError` names the first bad line."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise CredentialsFileError(f"{p}: cannot read the credentials file: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CredentialsFileError(f"{p}: the credentials file is not UTF-8 text") from None
        store = cls.parse(text, str(p))
        _warn_if_readable_by_others(p)
        return store

    @classmethod
    def parse(cls, text: str, source: str = "<credentials>") -> CredentialStore:
        creds: list[Credential] = []
        first_line: dict[str, int] = {}
        for lineno, line in enumerate(text.splitlines(), start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            where = f"{source} line {lineno}"
            if len(fields) > 3 and fields[3].startswith("#"):
                fields = fields[:3]
            if len(fields) != 3:
                raise CredentialsFileError(
                    f"{where}: expected ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID separated by spaces, "
                    f"found {len(fields)} field{'s' if len(fields) != 1 else ''}"
                )
            key_id, secret, account = fields
            if not _KEY_ID_RE.fullmatch(key_id):
                raise CredentialsFileError(
                    f"{where}: access key id {key_id[:40]!r} must be 1-128 characters of A-Z a-z 0-9 . _ + -"
                )
            if not _ACCOUNT_RE.fullmatch(account):
                raise CredentialsFileError(f"{where}: account id must be 12 digits, got {account[:40]!r}")
            if key_id in first_line:
                raise CredentialsFileError(
                    f"{where}: access key id {key_id} is already given on line {first_line[key_id]}; "
                    "each access key id may appear once"
                )
            first_line[key_id] = lineno
            creds.append(Credential(key_id, secret, account))
        return cls(creds)

    def lookup(self, access_key_id: str) -> Credential | None:
        return self._by_key.get(access_key_id)

    @property
    def accounts(self) -> frozenset[str]:
        return frozenset(c.account_id for c in self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Credential]:
        return iter(self._by_key.values())

    def __contains__(self, access_key_id: object) -> bool:
        return access_key_id in self._by_key


def _warn_if_readable_by_others(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "credentials file %s holds secrets but is readable by group or others (mode %o); "
            "run: chmod 600 %s",
            path,
            stat.S_IMODE(mode),
            path,
        )
