"""The local environment: app settings from local.settings(.example).json, storage pointed at Azurite."""

import json
import os
from pathlib import Path

from shared import config, storage
from shared.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
#: Where `devhost start` tells the other verbs how to reach it (DEVHOST_STATE moves it, for tests).
STATE_FILE = Path(os.environ.get("DEVHOST_STATE", ROOT / ".devhost" / "state.json"))


def local_settings() -> dict[str, str]:
    """Values of local.settings.json, or of the documented example when there is none."""
    path = ROOT / "local.settings.json"
    if not path.exists():
        path = ROOT / "local.settings.example.json"
    return {key: str(value) for key, value in json.loads(path.read_text())["Values"].items()}


def apply(connection_string: str, **overrides: str) -> dict[str, str]:
    """Sets app settings: overrides, else the environment, else local settings; storage is this connection."""
    values = {name: os.environ.get(name, value) for name, value in local_settings().items()}
    values |= {"AzureWebJobsStorage": connection_string, "WorkStorage": connection_string, **overrides}
    os.environ.update(values)
    get_settings.cache_clear()
    config.rules.cache_clear()
    storage.reset_clients()
    return values


#: Claim types whose debt devhost offsets automatically (production's default is none: config/rules.json).
DEVHOST_OFFSET_TYPES = ("refusion",)


def devhost_rules_file() -> Path:
    """The rules devhost runs under: config/rules.json with automatic offsetting switched on for the claim
    types in DEVHOST_OFFSET_TYPES, so the demo and the tests reach that branch (written beside the state)."""
    rules = json.loads((ROOT / "config" / "rules.json").read_text(encoding="utf-8"))
    for version in rules["versions"]:
        version["automations"]["claim_payouts"]["offset_automatically"] = list(DEVHOST_OFFSET_TYPES)
    path = STATE_FILE.parent / "rules.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rules, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def save_state(**state: str | int) -> None:
    """Records where a running `devhost start` environment is, for the other verbs."""
    STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(json.dumps(state, indent=2))


def load_state() -> dict[str, str]:
    """The running environment, as `devhost start` recorded it."""
    if not STATE_FILE.exists():
        raise SystemExit("no running devhost: start one with `python -m devhost start` in another terminal")
    return json.loads(STATE_FILE.read_text())
