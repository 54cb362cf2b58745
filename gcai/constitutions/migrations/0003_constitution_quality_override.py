# Adding a column makes SQLite rebuild constitutions_constitution, which breaks the
# immutability triggers of 0002 that refer to it: drop them around the change and put
# them back afterwards (PostgreSQL alters in place and keeps its triggers).
import importlib

from django.db import migrations, models

_immutable = importlib.import_module(
    "gcai.constitutions.migrations.0002_published_constitutions_immutable"
)


def _sqlite(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "sqlite":
            for sql in statements:
                schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("constitutions", "0002_published_constitutions_immutable"),
    ]

    operations = [
        migrations.RunPython(
            _sqlite(_immutable.SQLITE_REVERSE), _sqlite(_immutable.SQLITE_FORWARD)
        ),
        migrations.AddField(
            model_name="constitution",
            name="quality_override",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RunPython(
            _sqlite(_immutable.SQLITE_FORWARD), _sqlite(_immutable.SQLITE_REVERSE)
        ),
    ]
