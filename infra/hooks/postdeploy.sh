#!/usr/bin/env bash
# azd postdeploy hook (azure.yaml). After the code is deployed:
#   1. CODE_VERSION: the app setting (recorded on every run) and the azd environment value become the deployed
#      commit, so the next `azd provision` keeps it;
#   2. one Event Grid subscription per blob-triggered function of the *deployed* function list, on the work
#      storage account's system topic, filtered to the function's container and BlobCreated, dead-lettered to
#      the eventgrid-deadletter container. The webhook needs the blobs_extension system key, which the host
#      creates once code with a blob trigger runs: that is why this is a hook and not Bicep;
#   3. subscriptions this hook made for functions that no longer exist are deleted.
# Needs bash, az (signed in) and python3; azd passes the outputs of infra/main.bicep as environment variables.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
: "${AZURE_RESOURCE_GROUP:?run this through azd (azd up / azd deploy)}"
: "${AZURE_FUNCTION_APP_NAME:?}" "${AZURE_FUNCTION_APP_HOSTNAME:?}" "${AZURE_STORAGE_ACCOUNT_ID:?}"
: "${AZURE_EVENTGRID_SYSTEM_TOPIC_ID:?}"
: "${AZURE_EVENTGRID_DEADLETTER_CONTAINER:?}"
rg="$AZURE_RESOURCE_GROUP"
app="$AZURE_FUNCTION_APP_NAME"
python="$(command -v python3 || command -v python)"
subscriptions="$here/eventgrid_subscriptions.py"
api="$("$python" "$subscriptions" api-version)"
topic_url="${AZURE_EVENTGRID_SYSTEM_TOPIC_ID}/eventSubscriptions"

work="$(mktemp -d)"
chmod 700 "$work"
trap 'rm -rf "$work"' EXIT

# 1. The deployed version.
version="$(git -C "$root" describe --always --dirty 2>/dev/null || echo unversioned)"
current="$(az functionapp config appsettings list -g "$rg" -n "$app" --query "[?name=='CODE_VERSION'].value | [0]" -o tsv)"
if [ "$current" != "$version" ]; then
  echo "CODE_VERSION $current -> $version"
  az functionapp config appsettings set -g "$rg" -n "$app" --settings "CODE_VERSION=$version" -o none
  azd env set CODE_VERSION "$version"
fi

# 2. The deployed functions (the host may still be indexing a fresh package: an app with none has failed to load).
count=0
for _ in $(seq 1 30); do
  az functionapp function list -g "$rg" -n "$app" -o json >"$work/functions.json"
  count="$("$python" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$work/functions.json")"
  [ "$count" -gt 0 ] && break
  sleep 10
done
if [ "$count" -eq 0 ]; then
  echo "The app reports no functions: the worker could not index it (see its logs in Application Insights)." >&2
  exit 1
fi

plan="$("$python" "$subscriptions" plan "$work/functions.json")"
wanted="$(printf '%s\n' "$plan" | cut -f1)"
if [ -n "$plan" ]; then
  key=""
  for _ in $(seq 1 30); do
    key="$(az functionapp keys list -g "$rg" -n "$app" --query "systemKeys.blobs_extension" -o tsv 2>/dev/null || true)"
    [ -n "$key" ] && break
    sleep 10
  done
  if [ -z "$key" ]; then
    echo "The blobs_extension system key did not appear: the host has not started the blob triggers." >&2
    exit 1
  fi
  BLOBS_EXTENSION_KEY="$key" "$python" "$subscriptions" render "$work/functions.json" "$work" >/dev/null
  printf '%s\n' "$plan" | while IFS="$(printf '\t')" read -r name function container; do
    az rest --method put \
      --url "${topic_url}/${name}?api-version=${api}" \
      --body "@$work/$name.json" -o none
    echo "Event Grid subscription $name: $function <- BlobCreated in $container"
  done
fi

# 3. Subscriptions of functions that are gone.
existing="$(az rest --method get --url "${topic_url}?api-version=${api}" --query "value[].name" -o tsv)"
for name in $existing; do
  case "$name" in
    blobfn-*)
      if ! printf '%s\n' "$wanted" | grep -qx "$name"; then
        az rest --method delete --url "${topic_url}/${name}?api-version=${api}" -o none
        echo "Event Grid subscription $name deleted: its function is gone"
      fi
      ;;
  esac
done
