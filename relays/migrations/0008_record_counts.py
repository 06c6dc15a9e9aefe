"""RecordCount: per-type counts of VirtualMTAs kept by triggers, in the same transaction as the
insert or delete, whatever door wrote the row (the APIs, the admin, a bulk load in SQL)."""

from django.db import migrations, models

# An insert creates its type's row when missing (a flush may have emptied the table); a delete
# only decrements, so emptying both tables in either order leaves them consistent.
# On PostgreSQL, statement-level triggers with transition tables: one counter update per
# statement, however many rows it inserts or deletes (a row-level trigger would update the
# counter row once per row, and 100,000 updates of one row in one transaction are quadratic).
POSTGRESQL = [
    """
    CREATE FUNCTION relays_count_virtualmta_inserted() RETURNS trigger AS $$
    BEGIN
        INSERT INTO relays_recordcount (type, count, version)
        SELECT type, COUNT(*), 1 FROM inserted GROUP BY type
        ON CONFLICT (type) DO UPDATE
        SET count = relays_recordcount.count + EXCLUDED.count,
            version = relays_recordcount.version + 1;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE FUNCTION relays_count_virtualmta_deleted() RETURNS trigger AS $$
    BEGIN
        UPDATE relays_recordcount c SET count = c.count - d.n, version = c.version + 1
        FROM (SELECT type, COUNT(*) AS n FROM deleted GROUP BY type) d
        WHERE c.type = d.type;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER relays_count_virtualmta_insert AFTER INSERT ON relays_virtualmta
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION relays_count_virtualmta_inserted()
    """,
    """
    CREATE TRIGGER relays_count_virtualmta_delete AFTER DELETE ON relays_virtualmta
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION relays_count_virtualmta_deleted()
    """,
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS relays_count_virtualmta_insert ON relays_virtualmta",
    "DROP TRIGGER IF EXISTS relays_count_virtualmta_delete ON relays_virtualmta",
    "DROP FUNCTION IF EXISTS relays_count_virtualmta_inserted()",
    "DROP FUNCTION IF EXISTS relays_count_virtualmta_deleted()",
]
SQLITE = [
    """
    CREATE TRIGGER relays_count_virtualmta_insert AFTER INSERT ON relays_virtualmta
    BEGIN
        INSERT INTO relays_recordcount (type, count, version) VALUES (NEW.type, 1, 1)
        ON CONFLICT (type) DO UPDATE SET count = count + 1, version = version + 1;
    END
    """,
    """
    CREATE TRIGGER relays_count_virtualmta_delete AFTER DELETE ON relays_virtualmta
    BEGIN
        UPDATE relays_recordcount SET count = count - 1, version = version + 1
        WHERE type = OLD.type;
    END
    """,
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS relays_count_virtualmta_insert",
    "DROP TRIGGER IF EXISTS relays_count_virtualmta_delete",
]
INITIAL = """
    INSERT INTO relays_recordcount (type, count, version)
    SELECT type, COUNT(*), 1 FROM relays_virtualmta GROUP BY type
"""


def _run(schema_editor, statements):
    for statement in statements:
        schema_editor.execute(statement)


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    _run(schema_editor, {"postgresql": POSTGRESQL, "sqlite": SQLITE}[vendor] + [INITIAL])


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    _run(schema_editor, {"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE}[vendor])


class Migration(migrations.Migration):
    dependencies = [
        ("relays", "0007_one_credential_source"),
    ]

    operations = [
        migrations.CreateModel(
            name="RecordCount",
            fields=[
                (
                    "type",
                    models.CharField(
                        choices=[
                            ("ip_address", "IP address"),
                            ("relay_server", "relay server"),
                            ("routing_rule", "routing rule"),
                        ],
                        max_length=20,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("count", models.BigIntegerField(default=0)),
                ("version", models.BigIntegerField(default=0)),
            ],
            options={"ordering": ["type"]},
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
