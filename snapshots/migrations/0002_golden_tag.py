from django.db import migrations


def create_golden(apps, schema_editor):
    SnapshotTag = apps.get_model("snapshots", "SnapshotTag")
    SnapshotTag.objects.get_or_create(
        name="golden",
        defaults={"protected": True, "description": "The reference machine state; only admins may set it."},
    )


class Migration(migrations.Migration):
    dependencies = [("snapshots", "0001_initial")]
    operations = [migrations.RunPython(create_golden, migrations.RunPython.noop)]
