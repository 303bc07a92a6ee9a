"""CPR redaction for free text and keyed pseudonyms for personal identifiers.

CPR numbers may be used to identify a person (Databeskyttelsesloven § 11) but must never reach a log line,
an exception text, a blob or queue name, a metric or a case title. Everything that leaves the process as
text passes `redact`; a person is referred to by `pseudonym`, a keyed hash that cannot be reversed without
the key and that stays stable for lookups.
"""

import hashlib
import hmac
import re

#: Anything CPR-shaped: DDMMYY-XXXX or DDMMYYXXXX, and the 9-digit form a spreadsheet leaves when it drops
#: a leading zero (also with a dash). Deliberately wider than valid CPR numbers: a false positive costs a
#: redacted digit string, a false negative costs a personal-data breach.
CPR_SHAPED = re.compile(r"(?<![0-9])(?:[0-9]{6}-?[0-9]{4}|[0-9]{5}-?[0-9]{4})(?![0-9])")
REDACTED = "[CPR]"


def redact(text: str) -> str:
    """Text with every CPR-shaped number replaced by a marker."""
    return CPR_SHAPED.sub(REDACTED, text)


def contains_cpr(text: str) -> bool:
    """Whether text holds anything CPR-shaped."""
    return CPR_SHAPED.search(text) is not None


#: Hex digits spelt as letters: a digest in hex can hold a run of nine digits, which is CPR-shaped and would
#: be redacted from logs (and fail the log scan) though it is no CPR. Letters keep digests clear of that.
_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def digest(value: str, length: int = 32) -> str:
    """A SHA-256 digest of value, as letters only (safe for keys, names and logs)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:length].translate(_LETTERS)


def pseudonym(value: str, key: bytes, key_version: str) -> str:
    """Keyed hash (HMAC-SHA256) of an identifier, prefixed with the key's version so keys can rotate."""
    keyed = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"p{key_version}:{keyed[:32].translate(_LETTERS)}"
