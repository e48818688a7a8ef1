from django.db import migrations, models

from chattonic.core.migration_operations import AddIndexOnline


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY on PostgreSQL: messages keep arriving while it builds.
    atomic = False

    dependencies = [
        ("conversations", "0013_models_move_to_apps"),
    ]

    operations = [
        AddIndexOnline(
            model_name="message",
            index=models.Index(
                condition=models.Q(
                    ("channel__isnull", False), ("direction", "out"), ("status", "pending")
                ),
                fields=["created_at"],
                name="message_pending_send",
            ),
        ),
    ]
