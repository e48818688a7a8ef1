"""Lead webhooks' signing secrets, stored in plain text until now, are encrypted like the
channels' credentials (with CHATTONIC_ENCRYPTION_KEY); the plain column goes away."""

from django.db import migrations, models

from chattonic.core.credentials import decrypt_secret, encrypt_secret


def encrypt_secrets(apps, schema_editor):
    LeadWebhook = apps.get_model("conversations", "LeadWebhook")
    for webhook in LeadWebhook.objects.only("pk", "signing_secret").iterator():
        LeadWebhook.objects.filter(pk=webhook.pk).update(
            signing_secret_encrypted=encrypt_secret(webhook.signing_secret)
        )


def decrypt_secrets(apps, schema_editor):
    LeadWebhook = apps.get_model("conversations", "LeadWebhook")
    for webhook in LeadWebhook.objects.only("pk", "signing_secret_encrypted").iterator():
        LeadWebhook.objects.filter(pk=webhook.pk).update(
            signing_secret=decrypt_secret(webhook.signing_secret_encrypted)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0007_message_tenant_key_unchecked"),
    ]

    operations = [
        migrations.AddField(
            model_name="leadwebhook",
            name="signing_secret_encrypted",
            field=models.TextField(default="", editable=False),
            preserve_default=False,
        ),
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
        migrations.AlterField(
            model_name="leadwebhook",
            name="signing_secret",
            field=models.CharField(default="", editable=False, max_length=64),
        ),
        migrations.RemoveField(model_name="leadwebhook", name="signing_secret"),
    ]
