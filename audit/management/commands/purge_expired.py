from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from accounts.models import UserSession
from audit.retention import purge_expired_events
from notifications.retention import purge_old_notifications
from patients.gdpr import purge_inactive_accounts


class Command(BaseCommand):
    help = (
        "Apply retention: remove what is older than the configured periods (audit log, inactive "
        "accounts, old notifications, expired sessions), and say what went."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        # Every kind says what it did, even nothing: a nightly run's mail shows retention ran.
        self.verbose = options["verbosity"] >= 1
        self.purge_audit_log()
        self.purge_inactive_accounts()
        self.purge_notifications()
        self.purge_sessions()

    def say(self, line: str, *, did_something: bool) -> None:
        if did_something or self.verbose:
            self.stdout.write(line)

    def purge_audit_log(self) -> None:
        audit = purge_expired_events()
        months = ", ".join(f"{month:%Y-%m}" for month in audit.months) or "none"
        self.stdout.write(
            f"audit log: kept from {audit.cutoff:%Y-%m-%d}; removed {audit.events} events "
            f"(months: {months}), each month checkpointed"
        )
        for month in audit.kept_tampered:
            self.stderr.write(
                f"audit log: {month:%Y-%m} kept: its chain does not verify (run verify_audit_log)"
            )

    def purge_inactive_accounts(self) -> None:
        accounts = purge_inactive_accounts()
        self.say(
            f"inactive accounts: erased {accounts.erased}, warned {accounts.warned} "
            f"(no login or appointment for {settings.ACCOUNT_INACTIVE_DAYS} days, warned "
            f"{settings.ACCOUNT_INACTIVE_WARNING_DAYS} days before)",
            did_something=bool(accounts.erased or accounts.warned or accounts.skipped),
        )
        if accounts.skipped:
            self.stderr.write(
                f"inactive accounts: {accounts.skipped} kept for now: an appointment is too close "
                "to cancel"
            )

    def purge_notifications(self) -> None:
        removed = purge_old_notifications()
        self.say(
            f"notifications: removed {removed} sent, failed or cancelled messages older than "
            f"{settings.NOTIFICATION_RETENTION_DAYS} days",
            did_something=bool(removed),
        )

    def purge_sessions(self) -> None:
        removed, _ = UserSession.objects.filter(expire_date__lt=timezone.now()).delete()
        self.say(f"sessions: removed {removed} expired sessions", did_something=bool(removed))
