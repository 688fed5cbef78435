"""SMS backends: the same shape as Django's email backends (`send_messages` returns the number
sent and raises on failure). Chosen by settings.SMS_BACKEND."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str
    idempotency_key: str


class BaseSmsBackend(ABC):
    # True when a failed `send_messages` call may be retried message by message without any
    # message reaching its recipient twice: the provider sends all of a call or none, or drops a
    # repeated idempotency key. Delivery then sends a whole batch in one call.
    atomic_batches = False

    @abstractmethod
    def send_messages(self, messages: list[SmsMessage]) -> int:
        """Send the messages; return how many were sent; raise when the provider refuses."""


class FileSmsBackend(BaseSmsBackend):
    """Writes each message to SMS_FILE_PATH/<idempotency key>.txt: a resend overwrites the same
    file, so the sink itself holds each message once (the development default)."""

    atomic_batches = True  # a message written twice is one file

    def send_messages(self, messages: list[SmsMessage]) -> int:
        folder = Path(settings.SMS_FILE_PATH)
        folder.mkdir(parents=True, exist_ok=True)
        for message in messages:
            safe_key = "".join(
                c if c.isalnum() or c in "-_." else "_" for c in message.idempotency_key
            )
            (folder / f"{safe_key}.txt").write_text(f"To: {message.to}\n\n{message.body}\n")
        return len(messages)


class ConsoleSmsBackend(BaseSmsBackend):
    def send_messages(self, messages: list[SmsMessage]) -> int:
        for message in messages:
            # A development aid only: it prints the message, which contains a phone number.
            print(f"SMS to {message.to}: {message.body}")
        return len(messages)


outbox: list[SmsMessage] = []


class LocmemSmsBackend(BaseSmsBackend):
    """For tests: messages land in `notifications.sms.outbox`."""

    def send_messages(self, messages: list[SmsMessage]) -> int:
        outbox.extend(messages)
        return len(messages)


def get_sms_backend() -> BaseSmsBackend:
    return import_string(settings.SMS_BACKEND)()
