from django.db import migrations, models

import relays.models


def give_every_relay_its_own_id(apps, schema_editor):
    # A column default would give every existing row the same value; each needs its own.
    RelayServer = apps.get_model("relays", "RelayServer")
    for relay in RelayServer.objects.filter(relay_id__isnull=True).only("pk"):
        RelayServer.objects.filter(pk=relay.pk).update(relay_id=relays.models.new_relay_id())


class Migration(migrations.Migration):
    dependencies = [("relays", "0003_access_keys")]

    operations = [
        migrations.AddField(
            model_name="relayserver",
            name="relay_id",
            field=models.CharField(editable=False, max_length=100, null=True, verbose_name="Mail Manager RelayId"),
        ),
        migrations.RunPython(give_every_relay_its_own_id, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="relayserver",
            name="relay_id",
            field=models.CharField(
                default=relays.models.new_relay_id,
                editable=False,
                max_length=100,
                unique=True,
                verbose_name="Mail Manager RelayId",
            ),
        ),
        migrations.AddField(
            model_name="relayserver",
            name="secret_arn",
            field=models.CharField(blank=True, max_length=2048, null=True),
        ),
    ]
