"""Failed logins, counted for brute-force protection (issue 9)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("relays", "0010_audit_log"),
    ]

    operations = [
        migrations.CreateModel(
            name="LoginFailure",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("at", models.DateTimeField()),
                (
                    "address",
                    models.GenericIPAddressField(help_text="the client address (relayapi.clients)"),
                ),
                (
                    "username_digest",
                    models.CharField(
                        help_text="keyed SHA-256 of the username or access key id tried",
                        max_length=64,
                    ),
                ),
                (
                    "door",
                    models.CharField(
                        choices=[
                            ("greenarrow", "GreenArrow API (HTTP Basic)"),
                            ("mailmanager", "Mail Manager API (SigV4)"),
                            ("admin", "admin login form"),
                        ],
                        max_length=20,
                    ),
                ),
            ],
            options={
                "ordering": ["id"],
                "indexes": [
                    models.Index(fields=["address", "-at"], name="relays_loginfail_address_at"),
                    models.Index(fields=["at"], name="relays_loginfail_at"),
                ],
            },
        ),
    ]
