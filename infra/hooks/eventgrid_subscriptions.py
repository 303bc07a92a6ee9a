"""Event Grid subscriptions for the app's blob-triggered functions, as the azd postdeploy hook creates them.

A blob trigger on Flex Consumption uses the Event Grid source: the blobs extension receives BlobCreated events
on a webhook guarded by its system key (`blobs_extension`), which exists only once code is deployed. So the
subscriptions are made after deploying (`postdeploy.sh`), one per blob-triggered function of the deployed
function list, each filtered to that function's container.

    python3 eventgrid_subscriptions.py plan FUNCTIONS_JSON
        prints one line per subscription: name, function, container (tab-separated)
    python3 eventgrid_subscriptions.py api-version
        prints the ARM API version the bodies are written for
    python3 eventgrid_subscriptions.py render FUNCTIONS_JSON OUT_DIR
        writes OUT_DIR/<subscription>.json, the ARM body of each subscription; reads the webhook's host name,
        the key, the storage account id and the dead-letter container from the environment (the key never
        on a command line)

FUNCTIONS_JSON is `az functionapp function list` output. Standard library only: it runs wherever azd does.
"""

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: The only event a blob trigger needs.
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
#: Prefix of the subscriptions this hook owns: others on the topic are left alone.
NAME_PREFIX = "blobfn-"
#: ARM API version of Microsoft.EventGrid/systemTopics/eventSubscriptions.
API_VERSION = "2022-06-15"


@dataclass(frozen=True)
class Subscription:
    """One Event Grid subscription: the function it delivers to and the container it listens on."""

    name: str
    function: str
    container: str

    @property
    def subject_begins_with(self) -> str:
        """Blob events of this container only (the trailing slash keeps out containers that share a prefix)."""
        return f"/blobServices/default/containers/{self.container}/"


def subscription_name(function: str) -> str:
    """Event subscription names allow letters, digits and hyphens, 3 to 64 characters."""
    slug = re.sub(r"[^a-z0-9-]", "-", function.lower())
    return f"{NAME_PREFIX}{slug}"[:64]


def _bindings(function: Mapping[str, Any]) -> tuple[str, list[Mapping[str, Any]]]:
    """Name and bindings of a function as `az functionapp function list` (or ARM, or devhost) describes it."""
    config = function.get("config") or function.get("properties", {}).get("config") or {}
    bindings = config.get("bindings") if isinstance(config, Mapping) else None
    if bindings is None:
        bindings = function.get("bindings", [])
    name = str(function.get("name", ""))
    # ARM names a function "<app>/<function>"; the webhook wants the function's own name.
    return name.rsplit("/", 1)[-1], list(bindings)


def subscriptions(functions: Iterable[Mapping[str, Any]]) -> list[Subscription]:
    """A subscription per blob-triggered function; a blob trigger that does not use Event Grid is an error."""
    found: list[Subscription] = []
    for function in functions:
        name, bindings = _bindings(function)
        for binding in bindings:
            if str(binding.get("type", "")).lower() != "blobtrigger":
                continue
            if str(binding.get("source", "")).lower() != "eventgrid":
                raise ValueError(f"{name}: a blob trigger on Flex Consumption must use source=EventGrid")
            container = str(binding["path"]).split("/", 1)[0]
            found.append(Subscription(name=subscription_name(name), function=name, container=container))
    names = [s.name for s in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"functions map to the same subscription name: {duplicates}")
    return sorted(found, key=lambda s: s.name)


def webhook_url(hostname: str, function: str, key: str) -> str:
    """The blobs extension's Event Grid endpoint for one function."""
    return (
        f"https://{hostname}/runtime/webhooks/blobs"
        f"?functionName={quote(f'Host.Functions.{function}')}&code={quote(key, safe='')}"
    )


def body(
    subscription: Subscription, hostname: str, key: str, storage_account_id: str, deadletter_container: str
) -> dict[str, Any]:
    """ARM body of one subscription: webhook, BlobCreated in its container, dead-letters by the topic's identity."""
    return {
        "properties": {
            "destination": {
                "endpointType": "WebHook",
                "properties": {"endpointUrl": webhook_url(hostname, subscription.function, key)},
            },
            "filter": {
                "includedEventTypes": [BLOB_CREATED],
                "subjectBeginsWith": subscription.subject_begins_with,
                "isSubjectCaseSensitive": False,
            },
            "eventDeliverySchema": "EventGridSchema",
            "retryPolicy": {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440},
            "deadLetterWithResourceIdentity": {
                "identity": {"type": "SystemAssigned"},
                "deadLetterDestination": {
                    "endpointType": "StorageBlob",
                    "properties": {"resourceId": storage_account_id, "blobContainerName": deadletter_container},
                },
            },
        }
    }


def _load(path: str) -> list[Mapping[str, Any]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data if isinstance(data, list) else data.get("value", [])


def main(argv: list[str]) -> int:
    """Command line of the hook: `plan` prints the subscriptions, `render` writes their bodies (see above)."""
    if argv[:1] == ["api-version"]:
        sys.stdout.write(f"{API_VERSION}\n")
        return 0
    if len(argv) >= 2 and argv[0] == "plan":
        for s in subscriptions(_load(argv[1])):
            sys.stdout.write(f"{s.name}\t{s.function}\t{s.container}\n")
        return 0
    if len(argv) >= 3 and argv[0] == "render":
        out = Path(argv[2])
        env = os.environ
        for s in subscriptions(_load(argv[1])):
            document = body(
                s,
                hostname=env["AZURE_FUNCTION_APP_HOSTNAME"],
                key=env["BLOBS_EXTENSION_KEY"],
                storage_account_id=env["AZURE_STORAGE_ACCOUNT_ID"],
                deadletter_container=env["AZURE_EVENTGRID_DEADLETTER_CONTAINER"],
            )
            (out / f"{s.name}.json").write_text(json.dumps(document), encoding="utf-8")
            sys.stdout.write(f"{s.name}\n")
        return 0
    sys.stderr.write(__doc__ or "")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
