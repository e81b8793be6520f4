# Hand-written: the ledger and the cache move to the llm app (rows copied, calls now point at their subject
# through a generic relation), and GuardrailEvaluation moves to the guardrails app (its table is renamed, its rows
# stay: SeparateDatabaseAndState).

from django.db import migrations

BATCH = 2000


def copy_ledger_and_cache(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    OldCall = apps.get_model("evaluations", "JudgeCall")
    OldCache = apps.get_model("evaluations", "JudgeCache")
    NewCall = apps.get_model("llm", "JudgeCall")
    NewCache = apps.get_model("llm", "JudgeCache")
    # Keep each row's time: these historical classes belong to this migration alone, so switching auto_now_add off
    # here changes nothing else.
    for model in (NewCall, NewCache):
        model._meta.get_field("created_at").auto_now_add = False
    # The moved model keeps its content type (and so the admin log's references), under its new app.
    ContentType.objects.filter(app_label="evaluations", model="guardrailevaluation").update(app_label="guardrails")
    evaluation_type, _ = ContentType.objects.get_or_create(app_label="evaluations", model="evaluation")
    guardrail_type, _ = ContentType.objects.get_or_create(app_label="guardrails", model="guardrailevaluation")

    batch = []
    for call in OldCall.objects.order_by("id").iterator(chunk_size=BATCH):
        if call.evaluation_id is not None:
            subject_type, subject_id = evaluation_type, call.evaluation_id
        elif call.guardrail_evaluation_id is not None:
            subject_type, subject_id = guardrail_type, call.guardrail_evaluation_id
        else:
            subject_type, subject_id = None, None
        batch.append(
            NewCall(
                company_id=call.company_id,
                subject_type=subject_type,
                subject_id=subject_id,
                item_id=call.sample_id,
                provider=call.provider,
                model=call.model,
                purpose=call.purpose,
                attempt=call.attempt,
                outcome=call.outcome,
                error=call.error,
                input_tokens=call.input_tokens,
                output_tokens=call.output_tokens,
                cache_read_tokens=call.cache_read_tokens,
                cache_write_tokens=call.cache_write_tokens,
                cost_usd=call.cost_usd,
                latency_ms=call.latency_ms,
                created_at=call.created_at,
            )
        )
        if len(batch) >= BATCH:
            NewCall.objects.bulk_create(batch)
            batch = []
    NewCall.objects.bulk_create(batch)

    NewCache.objects.bulk_create(
        [
            NewCache(
                company_id=c.company_id,
                config_hash=c.config_hash,
                content_hash=c.content_hash,
                result=c.result,
                created_at=c.created_at,
            )
            for c in OldCache.objects.order_by("id").iterator(chunk_size=BATCH)
        ],
        batch_size=BATCH,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("evaluations", "0002_guardrailevaluation"),
        ("llm", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(copy_ledger_and_cache, migrations.RunPython.noop),
        migrations.DeleteModel(name="JudgeCall"),
        migrations.DeleteModel(name="JudgeCache"),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterModelTable(name="guardrailevaluation", table="guardrails_guardrailevaluation"),
            ],
            state_operations=[
                migrations.DeleteModel(name="GuardrailEvaluation"),
            ],
        ),
    ]
