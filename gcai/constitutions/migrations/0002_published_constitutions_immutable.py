"""Database triggers that refuse edits to published constitutions.

The rule is structural, so it lives in the database: no code path (admin, shell, a
buggy service) can change a published constitution or its principles. Editing makes a
new version instead. Deleting (e.g. a whole study) stays possible.
"""

from django.db import migrations

CONTENT_COLUMNS = ("title", "version", "status", "study_id", "method", "published_at")

PG_FORWARD = [
    """
    CREATE OR REPLACE FUNCTION gcai_constitution_immutable() RETURNS trigger AS $$
    BEGIN
      IF OLD.status = 'published' AND (
        NEW.title IS DISTINCT FROM OLD.title OR NEW.version IS DISTINCT FROM OLD.version OR
        NEW.status IS DISTINCT FROM OLD.status OR NEW.study_id IS DISTINCT FROM OLD.study_id OR
        NEW.method IS DISTINCT FROM OLD.method OR NEW.published_at IS DISTINCT FROM OLD.published_at
      ) THEN
        RAISE EXCEPTION 'published constitution % is immutable; create a new version', OLD.id
          USING ERRCODE = 'check_violation';
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER gcai_constitution_immutable BEFORE UPDATE ON constitutions_constitution
    FOR EACH ROW EXECUTE FUNCTION gcai_constitution_immutable();
    """,
    """
    CREATE OR REPLACE FUNCTION gcai_constitution_item_immutable() RETURNS trigger AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM constitutions_constitution c
                 WHERE c.id = NEW.constitution_id AND c.status = 'published')
         OR (TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM constitutions_constitution c
                 WHERE c.id = OLD.constitution_id AND c.status = 'published')) THEN
        RAISE EXCEPTION 'principles of a published constitution are immutable; create a new version'
          USING ERRCODE = 'check_violation';
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER gcai_constitution_item_immutable BEFORE INSERT OR UPDATE ON constitutions_constitutionprinciple
    FOR EACH ROW EXECUTE FUNCTION gcai_constitution_item_immutable();
    """,
]
PG_REVERSE = [
    "DROP TRIGGER IF EXISTS gcai_constitution_item_immutable ON constitutions_constitutionprinciple;",
    "DROP FUNCTION IF EXISTS gcai_constitution_item_immutable();",
    "DROP TRIGGER IF EXISTS gcai_constitution_immutable ON constitutions_constitution;",
    "DROP FUNCTION IF EXISTS gcai_constitution_immutable();",
]

_changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in CONTENT_COLUMNS)
SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER gcai_constitution_immutable BEFORE UPDATE ON constitutions_constitution
    WHEN OLD.status = 'published' AND ({_changed})
    BEGIN SELECT RAISE(ABORT, 'published constitution is immutable; create a new version'); END;
    """,
    """
    CREATE TRIGGER gcai_constitution_item_immutable_ins BEFORE INSERT ON constitutions_constitutionprinciple
    WHEN (SELECT status FROM constitutions_constitution WHERE id = NEW.constitution_id) = 'published'
    BEGIN SELECT RAISE(ABORT, 'principles of a published constitution are immutable'); END;
    """,
    """
    CREATE TRIGGER gcai_constitution_item_immutable_upd BEFORE UPDATE ON constitutions_constitutionprinciple
    WHEN (SELECT status FROM constitutions_constitution WHERE id = OLD.constitution_id) = 'published'
      OR (SELECT status FROM constitutions_constitution WHERE id = NEW.constitution_id) = 'published'
    BEGIN SELECT RAISE(ABORT, 'principles of a published constitution are immutable'); END;
    """,
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS gcai_constitution_item_immutable_upd;",
    "DROP TRIGGER IF EXISTS gcai_constitution_item_immutable_ins;",
    "DROP TRIGGER IF EXISTS gcai_constitution_immutable;",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("constitutions", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": PG_REVERSE, "sqlite": SQLITE_REVERSE}),
        ),
    ]
