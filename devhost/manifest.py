"""`devhost manifest`: what the app needs from its environment, generated from the code.

The infrastructure checks compare this with the Bicep templates: every queue (and its poison twin),
container, table, connection and setting here must be provisioned there.
"""

import re
from typing import Any

import azure.functions as func

from devhost.app_index import index
from shared import storage
from shared.events import Event
from shared.ledger import TABLES
from shared.pipeline import WORK_CONTAINER, Chain
from shared.settings import WORK_CONNECTION, Settings

HOST_CONNECTION = "AzureWebJobsStorage"
_SETTING_REFERENCE = re.compile(r"%([A-Za-z0-9_]+)%")


def _setting_name(field: str, info: Any) -> str:
    alias = info.validation_alias
    if alias is not None and hasattr(alias, "choices"):
        return str(alias.choices[0])
    return field.upper()


def build(app: func.FunctionApp) -> dict[str, Any]:
    """The manifest of an app: functions and triggers, queues, containers, tables, connections, settings, events."""
    functions = []
    queues: set[str] = set()
    containers = {WORK_CONTAINER, *storage.REQUIRED_CONTAINERS}
    connections = {HOST_CONNECTION, WORK_CONNECTION}
    referenced_settings: set[str] = set()
    for spec in index(app):
        trigger = spec.trigger
        entry: dict[str, Any] = {"name": spec.name, "trigger": spec.trigger_type}
        for key in ("queueName", "path", "schedule", "connection", "source", "route"):
            if key in trigger:
                entry[key] = trigger[key]
        referenced_settings.update(_SETTING_REFERENCE.findall(str(trigger)))
        if "queueName" in trigger:
            queues.add(trigger["queueName"])
        if spec.trigger_type == "blobTrigger":
            containers.add(trigger["path"].split("/", 1)[0])
        if "connection" in trigger:
            connections.add(trigger["connection"])
        functions.append(entry)
    for chain in Chain.registry.values():
        if set(chain.queues) & queues:
            queues.update(chain.queues)
    settings = [
        {"name": _setting_name(name, info), "description": info.description or "", "required": info.is_required()}
        for name, info in Settings.model_fields.items()
    ]
    known = {s["name"] for s in settings}
    settings += [
        {"name": name, "description": "referenced by a trigger", "required": True}
        for name in sorted(referenced_settings - known)
    ]
    return {
        "functions": sorted(functions, key=lambda f: f["name"]),
        "queues": [{"name": q, "poison": f"{q}-poison"} for q in sorted(queues)],
        "containers": sorted(containers),
        "tables": sorted({*TABLES, *storage.REQUIRED_TABLES}),
        "connections": sorted(connections),
        "settings": sorted(settings, key=lambda s: s["name"]),
        "events": sorted(event.value for event in Event),
    }
