"""The audit log, and the permission to see stored SMTP passwords (issue 9)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("relays", "0009_encrypted_secrets"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="relayserver",
            options={
                "ordering": ["id"],
                "permissions": [
                    (
                        "view_relay_credentials",
                        "Can see the stored SMTP passwords of relay servers",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="AuditEntry",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("actor", models.CharField(blank=True, max_length=150)),
                ("actor_id", models.BigIntegerField(blank=True, null=True)),
                (
                    "facade",
                    models.CharField(
                        help_text="greenarrow, mailmanager, admin or command (the door used)",
                        max_length=20,
                    ),
                ),
                ("address", models.GenericIPAddressField(blank=True, null=True)),
                ("request_id", models.CharField(blank=True, max_length=128)),
                (
                    "action",
                    models.CharField(
                        choices=[("create", "Create"), ("update", "Update"), ("delete", "Delete")],
                        max_length=10,
                    ),
                ),
                ("record_type", models.CharField(max_length=30)),
                ("record_id", models.BigIntegerField(blank=True, null=True)),
                ("record_name", models.CharField(blank=True, max_length=200)),
                ("before", models.JSONField(blank=True, null=True)),
                ("after", models.JSONField(blank=True, null=True)),
            ],
            options={
                "verbose_name_plural": "audit entries",
                "ordering": ["-at", "-id"],
                "indexes": [
                    models.Index(
                        fields=["record_type", "record_id", "-at"], name="relays_audit_record_idx"
                    )
                ],
            },
        ),
    ]
