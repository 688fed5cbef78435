"""DESIGN invariant 1 on PostgreSQL: two active appointments of one practitioner never overlap.

Django's ExclusionConstraint cannot be declared on a model that must also migrate on SQLite, so
the constraint is added here, on PostgreSQL only. SQLite serializes bookings with IMMEDIATE
transactions instead (see config/settings.py).
"""

from django.db import migrations

CONSTRAINT = "booking_appointment_no_overlap"


def add_constraint(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    schema_editor.execute(
        f"ALTER TABLE booking_appointment ADD CONSTRAINT {CONSTRAINT} "
        "EXCLUDE USING gist (practitioner_id WITH =, tstzrange(\"start\", \"end\", '[)') WITH &&) "
        "WHERE (status <> 'cancelled')"
    )


def drop_constraint(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE booking_appointment DROP CONSTRAINT IF EXISTS {CONSTRAINT}")


class Migration(migrations.Migration):
    dependencies = [("booking", "0001_initial")]

    operations = [migrations.RunPython(add_constraint, drop_constraint, elidable=False)]
