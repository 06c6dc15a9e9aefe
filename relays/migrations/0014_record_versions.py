"""VirtualMta.version: one more on every write through the services, so that a write based on
an older read is refused (the admin's forms, the GreenArrow API's If-Match)."""

import importlib

from django.db import migrations, models

# On SQLite, adding a column remakes the table, and the remade table has lost the record-count
# triggers of migration 0008: they are made again, as 0008 made them.
record_counts = importlib.import_module("relays.migrations.0008_record_counts")


def restore_sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in record_counts.SQLITE_REVERSE + record_counts.SQLITE:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("relays", "0013_security_boundaries"),
    ]

    operations = [
        migrations.AddField(
            model_name="virtualmta",
            name="version",
            field=models.PositiveBigIntegerField(default=1, db_default=1, editable=False),
        ),
        migrations.RunPython(restore_sqlite_triggers, restore_sqlite_triggers),
    ]
