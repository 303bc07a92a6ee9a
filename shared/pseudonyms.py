"""Pseudonymous references under the configured keys: the current one to write, every one to look up."""

from shared.personal_data import pseudonym
from shared.settings import get_settings


def reference(value: str) -> str:
    """The reference of a personal identifier under the current key (what new items record)."""
    settings = get_settings()
    return pseudonym(value, settings.pseudonym_key.get_secret_value().encode(), settings.pseudonym_key_version)


def lookup_references(value: str) -> list[str]:
    """Its references under the current and every earlier key: after a rotation, older items are still found."""
    settings = get_settings()
    earlier = [
        pseudonym(value, key.get_secret_value().encode(), version)
        for version, key in sorted(settings.pseudonym_previous_keys.items())
        if version != settings.pseudonym_key_version
    ]
    return [reference(value), *earlier]
