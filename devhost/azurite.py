"""Azurite, the storage emulator, from the project's own node_modules, on free loopback ports.

By default it speaks HTTP and accepts the well-known account key. Started with `oauth=` (a devhost loopback
certificate) it speaks HTTPS and also checks bearer tokens (`--oauth basic`), so the identity-based connection
can be tested against it; the account key still works there, for devhost's own polling.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devhost.certs import LoopbackCertificate

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key: public, documented, and useless outside the emulator.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def connection_string(
    blob_port: int, queue_port: int, table_port: int, host: str = "127.0.0.1", scheme: str = "http"
) -> str:
    """The connection string of an Azurite instance."""
    return (
        f"DefaultEndpointsProtocol={scheme};AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint={scheme}://{host}:{blob_port}/{ACCOUNT};"
        f"QueueEndpoint={scheme}://{host}:{queue_port}/{ACCOUNT};"
        f"TableEndpoint={scheme}://{host}:{table_port}/{ACCOUNT};"
    )


@dataclass
class Azurite:
    """A running Azurite process and how to reach it."""

    process: subprocess.Popen[bytes]
    ports: tuple[int, int, int]
    workdir: Path
    log: Path
    scheme: str = "http"  # "https" when started with oauth

    @property
    def connection_string(self) -> str:
        """Connection string for all three services (account key: accepted in OAuth mode too)."""
        return connection_string(*self.ports, scheme=self.scheme)

    @property
    def blob_service_uri(self) -> str:
        """Blob endpoint, as `<connection>__blobServiceUri` names it."""
        return f"{self.scheme}://127.0.0.1:{self.ports[0]}/{ACCOUNT}"

    @property
    def queue_service_uri(self) -> str:
        """Queue endpoint, as `<connection>__queueServiceUri` names it."""
        return f"{self.scheme}://127.0.0.1:{self.ports[1]}/{ACCOUNT}"

    @property
    def table_service_uri(self) -> str:
        """Table endpoint, as `<connection>__tableServiceUri` names it."""
        return f"{self.scheme}://127.0.0.1:{self.ports[2]}/{ACCOUNT}"

    def stop(self) -> None:
        """Stops the emulator and removes its working folder."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def executable() -> Path:
    """The pinned Azurite from package.json; installed by the README's commands (`npm ci`)."""
    path = ROOT / "node_modules" / ".bin" / "azurite"
    if not path.exists():
        raise RuntimeError("Azurite is not installed: run `npm ci` in the project root (./dev does it)")
    return path


def start(
    *,
    in_memory: bool = True,
    log_dir: Path | None = None,
    timeout: float = 30.0,
    oauth: LoopbackCertificate | None = None,
) -> Azurite:
    """Starts Azurite (--skipApiVersionCheck --loose; with `oauth`: HTTPS and bearer tokens) and waits for it."""
    ports = (free_port(), free_port(), free_port())
    workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
    log = (log_dir or workdir) / f"azurite-{ports[0]}.log"
    args = [
        str(executable()),
        "--silent",
        "--skipApiVersionCheck",
        "--loose",
        "--disableProductStyleUrl",
        # Azure keeps idle connections for minutes; Azurite's 5 s default closes pooled connections under the
        # SDK, which does not retry a non-idempotent request (a batch, a merge) on the reset that follows.
        "--blobKeepAliveTimeout",
        "120",
        "--queueKeepAliveTimeout",
        "120",
        "--tableKeepAliveTimeout",
        "120",
        "--blobHost",
        "127.0.0.1",
        "--queueHost",
        "127.0.0.1",
        "--tableHost",
        "127.0.0.1",
        "--blobPort",
        str(ports[0]),
        "--queuePort",
        str(ports[1]),
        "--tablePort",
        str(ports[2]),
    ]
    args += ["--inMemoryPersistence"] if in_memory else ["--location", str(workdir)]
    if oauth is not None:  # Azurite checks bearer tokens only over HTTPS
        args += ["--oauth", "basic", "--cert", str(oauth.cert), "--key", str(oauth.key)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            args, stdout=output, stderr=subprocess.STDOUT, cwd=workdir, env={**os.environ}, start_new_session=True
        )
    azurite = Azurite(process, ports, workdir, log, scheme="https" if oauth else "http")
    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Azurite exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    azurite.stop()
                    raise RuntimeError(f"Azurite did not open port {port} within {timeout} s") from None
                time.sleep(0.1)
    return azurite
