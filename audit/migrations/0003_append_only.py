"""Seal what exists, partition the events table by month (PostgreSQL) and make the audit tables
append-only with triggers. See audit/partitions.py."""

from django.db import migrations
from django.utils import timezone


def mac_existing_events(apps, schema_editor):
    # Events written before the chain existed get their mac now, before the triggers forbid it.
    from audit.chain import event_mac

    AccessEvent = apps.get_model("audit", "AccessEvent")
    for event in AccessEvent.objects.filter(mac="").iterator(chunk_size=2000):
        AccessEvent.objects.filter(pk=event.pk).update(mac=event_mac(event))


def partition_and_protect(apps, schema_editor):
    from audit import partitions

    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        first = timezone.now().date().replace(day=1, month=1)  # this year onwards
        partitions.install_triggers(connection)  # the functions the partitions' triggers use
        partitions.partition_events_table(connection, first=first, count=24)
    partitions.install_triggers(connection)


class Migration(migrations.Migration):
    atomic = True

    dependencies = [("audit", "0002_chain_and_alerts")]

    operations = [
        migrations.RunPython(mac_existing_events, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(partition_and_protect, migrations.RunPython.noop, elidable=False),
    ]
