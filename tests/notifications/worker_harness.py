"""What tests/notifications/test_worker.py needs around a real Celery worker: a private
redis-server it may stop and start, worker processes it may kill, and a file sink standing in for
the SMS provider. Emails go through Django's file backend (the development default) under the
worker's CRENEAU_VAR_DIR, and are read back by their Message-ID, which carries the idempotency key.

The sink is imported by the worker (SMS_BACKEND points here), so this module imports nothing
from pytest. It is configured by the worker's environment:

- SINK_FILE: one line per message accepted, "<channel> <idempotency key>", written with fsync.
  Every call is also logged to SINK_FILE + ".calls" ("<time> <outcome> <keys>").
- SINK_DELAY_SECONDS: how long a call takes, so that a test can kill the worker mid-send.
- SINK_DELAY_AFTER_WRITE: "1" to wait after recording the messages (the provider accepted them
  but its answer never reached the worker) instead of before (the provider never got them).
- SINK_DOWN_FLAG: a path; while a file is there, every call raises ProviderUnavailable.
- SINK_REJECT_NUMBERS: comma-separated phone numbers the provider always rejects.
"""

import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from notifications.sms import BaseSmsBackend, SmsMessage

ROOT = Path(__file__).resolve().parents[2]
SMS_SINK = "tests.notifications.worker_harness.FileSmsSink"
MESSAGE_ID = re.compile(rb"^Message-ID: <([^@>]+)@[^>]+>", re.MULTILINE)


class ProviderUnavailable(Exception):
    """A transient provider failure (HTTP 503)."""


class ProviderRejected(Exception):
    """A permanent provider failure for one message (an invalid number)."""


# --- The SMS sink (runs inside the worker) -------------------------------------------------


def _append(path: Path, text: str) -> None:
    with path.open("a") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _provider_error(numbers: Sequence[str]) -> Exception | None:
    down_flag = os.environ.get("SINK_DOWN_FLAG")
    if down_flag and Path(down_flag).exists():
        return ProviderUnavailable()
    rejected = set(filter(None, os.environ.get("SINK_REJECT_NUMBERS", "").split(",")))
    if rejected.intersection(numbers):
        return ProviderRejected()
    return None


class FileSmsSink(BaseSmsBackend):
    # A call is recorded whole or not at all, so delivery may send a batch in one call and, when
    # it fails, retry it message by message (what a real provider's batch endpoint allows).
    atomic_batches = True

    def send_messages(self, messages: list[SmsMessage]) -> int:
        keys = [message.idempotency_key for message in messages]
        error = _provider_error([message.to for message in messages])
        outcome = type(error).__name__ if error else "accepted"
        sink = Path(os.environ["SINK_FILE"])
        _append(Path(f"{sink}.calls"), f"{time.time():.3f} {outcome} {','.join(keys)}\n")
        if error:
            raise error
        delay = float(os.environ.get("SINK_DELAY_SECONDS", "0"))
        after_write = os.environ.get("SINK_DELAY_AFTER_WRITE") == "1"
        time.sleep(0 if after_write else delay)
        _append(sink, "".join(f"sms {key}\n" for key in keys))
        time.sleep(delay if after_write else 0)
        return len(messages)


# --- Reading the sinks (in the test) ------------------------------------------------------------


def delivered(sink: Path, email_folder: Path) -> Counter[str]:
    """How many times each "<channel> <idempotency key>" reached the SMS sink or the email
    files (delivery.py builds the Message-ID out of the key, ":" becoming ".")."""
    lines = Counter(sink.read_text().splitlines()) if sink.exists() else Counter()
    for path in sorted(email_folder.glob("*.log")) if email_folder.exists() else []:
        for message_id in MESSAGE_ID.findall(path.read_bytes()):
            lines[f"email {message_id.decode().replace('.', ':')}"] += 1
    return lines


def calls(sink: Path) -> list[tuple[float, str, list[str]]]:
    path = Path(f"{sink}.calls")
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        moment, outcome, keys = line.split(" ", 2)
        rows.append((float(moment), outcome, keys.split(",")))
    return rows


def wait_until(
    condition: Callable[[], object], *, timeout: float, what: str, every: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- Processes (started by the test) ----------------------------------------------------------


class PrivateRedis:
    """A redis-server of the test's own, without persistence: stopping it loses every message
    it held, as a crashed broker would."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self.answers, timeout=10, what=f"redis-server on port {self.port}")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            conn.sendall(b"FLUSHALL\r\n")
            conn.recv(16)


class Worker:
    """`celery -A config worker` as a subprocess in its own process group, so that SIGKILL takes
    the pool child that is sending along with the parent, as when a machine dies."""

    count = 0

    def __init__(self, *, env: dict[str, str], log: Path) -> None:
        Worker.count += 1
        self.name = f"h7-worker-{os.getpid()}-{Worker.count}@%h"
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 30) -> "Worker":
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(ROOT / ".venv" / "bin" / "celery"),
                    "-A",
                    "config",
                    "worker",
                    "--pool=prefork",
                    "--concurrency=1",
                    "-Q",
                    "celery",
                    "-n",
                    self.name,
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                    "-l",
                    "INFO",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"worker exited at start:\n{self.output()[-3000:]}")
            return b" ready." in self.log.read_bytes()[offset:]

        wait_until(ready, timeout=timeout, what="the worker to be ready", every=0.2)
        return self

    def kill(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
