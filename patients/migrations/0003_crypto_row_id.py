"""Bind encrypted values to their row: every patient and relative gets a random crypto_row_id.

Existing values stay v1 tokens (bound to table and column only) and keep decrypting;
`manage.py rotate_encryption_key` rewrites them as v2 tokens bound to the row.
"""

import uuid

from django.db import migrations, models

BATCH = 2000


def fill_row_ids(apps, schema_editor):
    db = schema_editor.connection.alias
    for name in ("Patient", "Relative"):
        model = apps.get_model("patients", name)
        pending = model.objects.using(db).filter(crypto_row_id__isnull=True).order_by("pk")
        while ids := list(pending.values_list("pk", flat=True)[:BATCH]):
            rows = [model(pk=pk, crypto_row_id=uuid.uuid4()) for pk in ids]
            model.objects.using(db).bulk_update(rows, ["crypto_row_id"])


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0002_erasure"),
    ]

    operations = [
        migrations.AddField(
            model_name="patient",
            name="crypto_row_id",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="relative",
            name="crypto_row_id",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.RunPython(fill_row_ids, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="patient",
            name="crypto_row_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
        migrations.AlterField(
            model_name="relative",
            name="crypto_row_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
