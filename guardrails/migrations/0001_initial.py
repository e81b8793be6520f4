# Hand-written: GuardrailEvaluation moved here from evaluations; its table was renamed there
# (evaluations 0003), so this only tells the migration state.

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("companies", "0001_initial"),
        ("evaluations", "0003_move_ledger_and_guardrails"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
        migrations.CreateModel(
            name='GuardrailEvaluation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('code', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('in_progress', 'In progress'), ('completed', 'Completed'), ('failed', 'Failed'), ('canceled', 'Canceled')], default='queued', max_length=16)),
                ('run_mode', models.CharField(choices=[('precision_plus', 'Precision plus'), ('precision', 'Precision'), ('smart', 'Smart'), ('economy', 'Economy')], default='smart', max_length=16)),
                ('guardrail_metrics', models.JSONField(default=list)),
                ('model_input', models.JSONField(default=dict)),
                ('model_output', models.TextField(blank=True)),
                ('model_used', models.CharField(blank=True, max_length=200, null=True)),
                ('nametag', models.CharField(blank=True, max_length=255, null=True)),
                ('evaluation_result', models.JSONField(blank=True, null=True)),
                ('progress', models.PositiveSmallIntegerField(default=0)),
                ('trace', models.JSONField(blank=True, default=dict)),
                ('error_message', models.TextField(blank=True, null=True)),
                ('error_timestamp', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('start_timestamp', models.DateTimeField(blank=True, null=True)),
                ('end_timestamp', models.DateTimeField(blank=True, null=True)),
                ('claimed_at', models.DateTimeField(blank=True, null=True)),
                ('modified_at', models.DateTimeField(auto_now=True)),
                ('company', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='guardrail_evaluations', to='companies.company')),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AddIndex(
            model_name='guardrailevaluation',
            index=models.Index(fields=['company', '-created_at'], name='guardrail_company_created'),
        ),
            ],
        ),
    ]
