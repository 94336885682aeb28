"""Redaction of secrets in anything we show: log lines, artifacts, error texts, plans.

Two nets: the exact secrets we were handed (the TAO key, a SAS token, a connection string),
and patterns for the credential shapes Azure uses, so a secret that reaches a text by another
road (an Azure SDK error quoting the request URL with its SAS) is caught too.

Which SAS query parameters are secret: only `sig`. It is the HMAC of the other fields made
with the account key (or a user delegation key); with it anyone can use the token. The rest
(`sv`, `se`, `st`, `sp`, `spr`, `sr`, `ss`, `srt`, `sip`, `si`, `skoid`, `sktid`, `skt`, `ske`,
`sks`, `skv`, ...) is the plain text that was signed (version, expiry, permissions, the ids of
the signing identity): useless without `sig` and what an operator needs to see to tell why a
token was refused (expired, wrong permissions), so it stays readable.

`scrub` applies the patterns plus every secret this process was told about
(`remember_secret`); `tasks.errors` runs it over every TaoflowError text and
`tasks.log_filters` over every log record.
"""

from __future__ import annotations

import re
import threading
from typing import Iterable
from urllib.parse import quote, unquote

MASK = "***"

#: Explicit secrets this short are masked only where they stand as a whole token (`-k ab`,
#: `key=ab`, `"ab"`), not inside longer words: a 3-letter key masked everywhere would turn every
#: path and sentence into noise. Longer ones are masked wherever they occur.
SHORT_SECRET = 8

# A short secret is a whole token when no word character (or path/base64 glue) touches it;
# a trailing "." ends a sentence, so it counts as a boundary unless a word follows it.
_TOKEN = r"(?<![\w.+/-]){}(?![\w+/-]|\.\w)"

# Values of these fields are credentials wherever they appear (connection strings, SAS queries,
# Authorization headers, mappings printed with repr or JSON).
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|ClientSecret)=([^;\s\"']+)"), r"\1=" + MASK),
    (re.compile(r"(?i)(?<![\w-])(sig)=([^&\s\"'#<>;]+)"), r"\1=" + MASK),
    # The same inside a URL-encoded URL (a URL in another URL's query, a logged redirect).
    (re.compile(r"(?i)(?:(?<=%26)|(?<=%3F)|(?<![\w-]))(sig%3D)((?:(?!%26)[^&\s\"'#<>;])+)"), r"\1" + MASK),
    (re.compile(r"(SharedKey(?:Lite)? [^:\s]+):([A-Za-z0-9+/=]{16,})"), r"\1:" + MASK),
    (re.compile(r"(?i)(Bearer) ([A-Za-z0-9._~+/=-]{16,})"), r"\1 " + MASK),
    # A storage account key on its own: 64 random bytes in base64.
    (re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])"), MASK),
    # A mapping entry named `key` ({'key': '...'} or "key": "..."), as Prefect prints parameters.
    (re.compile(r"""(["'])key\1(\s*:\s*)(["'])(?:(?!\3).)+\3"""), r"\1key\1\2\3" + MASK + r"\3"),
)
_CREDENTIAL_FIELDS = {"accountkey", "sharedaccesskey", "sharedaccesssignature", "sig", "clientsecret"}


class Redactor:
    """Replaces known secrets and credential-shaped values with `***`.

    >>> Redactor(["s3cr3t-key"])("-k s3cr3t-key https://a.blob.core.windows.net/c?sp=r&sig=abc")
    '-k *** https://a.blob.core.windows.net/c?sp=r&sig=***'
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Replaced as a whole on every add (copy-on-write): readers in other threads never lock.
        self._long: tuple[str, ...] = ()
        self._short: tuple[re.Pattern[str], ...] = ()
        self._lock = threading.Lock()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Remember a secret, its URL-encoded forms, and the credential parts it contains."""
        if not secret:
            return
        values = {secret, unquote(secret), quote(secret, safe="")}
        # A connection string's or SAS token's parts leak on their own too (a library may log just the key).
        for part in re.split(r"[;&?]", secret):
            name, _, value = part.partition("=")
            if name.strip().lower() in _CREDENTIAL_FIELDS and value:
                values |= {value, unquote(value), quote(unquote(value), safe="")}
        with self._lock:
            long = set(self._long) | {v for v in values if len(v) >= SHORT_SECRET}
            # Longest first, so a connection string goes before the key it contains.
            self._long = tuple(sorted(long, key=len, reverse=True))
            known = {p.pattern for p in self._short}
            new = [re.compile(_TOKEN.format(re.escape(v))) for v in values if 0 < len(v) < SHORT_SECRET]
            self._short += tuple(p for p in new if p.pattern not in known)

    def __call__(self, text: str) -> str:
        for secret in self._long:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern in self._short:
            text = pattern.sub(MASK, text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


_PROCESS = Redactor()


def remember_secret(secret: str | None) -> None:
    """Mask `secret` in every error text and log line of this process from now on.

    >>> remember_secret("tlt_encode"); scrub("TAO said: bad key tlt_encode")
    'TAO said: bad key ***'
    """
    _PROCESS.add(secret)


def scrub(text: str) -> str:
    """`text` without credential shapes (SAS signatures, account keys) or remembered secrets.

    >>> scrub("403 for https://a.blob.core.windows.net/c/x?sv=2024-08-04&se=2026-01-01&sig=Zm9v%2Bbar")
    '403 for https://a.blob.core.windows.net/c/x?sv=2024-08-04&se=2026-01-01&sig=***'
    """
    return _PROCESS(text)
