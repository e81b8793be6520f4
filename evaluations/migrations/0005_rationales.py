from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("evaluations", "0004_canceled_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="sampleclassification",
            name="rationales",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
