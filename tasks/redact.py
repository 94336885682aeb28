"""Redaction of secrets in anything we show: log lines, artifacts, error texts, plans.

Two nets: the exact secrets we were handed (the TAO key, a SAS token, a connection string),
and patterns for the credential shapes Azure uses, so a secret that reaches a log line by
another road (a library printing a URL with its SAS) is caught too.
"""

from __future__ import annotations

import re
from typing import Iterable

MASK = "***"

# Values of these fields are credentials wherever they appear (connection strings, SAS queries).
_PATTERNS = (
    re.compile(r"(?i)(AccountKey|SharedAccessKey|SharedAccessSignature|SharedAccessKeyName)=([^;\s\"']+)"),
    re.compile(r"(?i)([?&]sig)=([^&\s\"']+)"),
    re.compile(r"(?i)(Bearer) ([A-Za-z0-9._~+/=-]{16,})"),
)
_CREDENTIAL_FIELDS = {"accountkey", "sharedaccesskey", "sharedaccesssignature", "sig"}
#: Shorter explicit secrets would mask ordinary words; TAO keys and tokens are longer.
MIN_SECRET_LENGTH = 4


class Redactor:
    """Replaces known secrets and credential-shaped values with `***`."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < MIN_SECRET_LENGTH or secret in self._secrets:
            return
        self._secrets.append(secret)
        # Longest first, so a connection string goes before the key it contains.
        self._secrets.sort(key=len, reverse=True)
        # A connection string's parts leak on their own too (a library may log just the key).
        for part in re.split(r"[;&?]", secret):
            name, _, value = part.partition("=")
            if name.strip().lower() in _CREDENTIAL_FIELDS and len(value) >= MIN_SECRET_LENGTH and value not in self._secrets:
                self._secrets.append(value)
                self._secrets.sort(key=len, reverse=True)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: f"{m.group(1)}={MASK}" if "=" in m.group(0) else f"{m.group(1)} {MASK}", text)
        return text
