from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _protect_audit_tables(using: str = "default", **kwargs: Any) -> None:
    # Again after every migrate: SQLite drops a table's triggers when a migration rebuilds it,
    # and the partitions ahead must exist whatever the date of the last migration.
    from django.db import connections

    from audit import partitions
    from audit.tasks import partitions_ahead

    connection = connections[using]
    partitions.install_triggers(connection)
    partitions.create_partitions(connection, partitions_ahead())


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"

    def ready(self) -> None:
        post_migrate.connect(_protect_audit_tables, sender=self, dispatch_uid="audit_protect")
