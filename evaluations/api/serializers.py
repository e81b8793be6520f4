"""Dataframer evaluation wire shapes (pydataframer 0.12.1 types/dataframer/evaluation_*): every key present."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from companies.api.base import WireUUIDField
from evaluations.human_review import statistics_with_human_review
from evaluations.models import Evaluation, Review
from evaluations.trace import evaluation_trace

# --- Output ---


class EvaluationProgressOutputSerializer(serializers.Serializer[Any]):
    classified = serializers.IntegerField(help_text="Samples with a classification row (failed ones included).")
    failed = serializers.IntegerField()
    total = serializers.IntegerField()


class EmbeddedPlanPropertyOutputSerializer(serializers.Serializer[Any]):
    property_name = serializers.CharField()
    mode = serializers.ChoiceField(
        choices=["prototypes", "lexicon", "taught", "declined"],
        help_text="How the embedded judge judges the property in this evaluation, or that it declined it.",
    )
    reason = serializers.CharField()
    labels = serializers.IntegerField(help_text="Human labels that taught or checked it (0: none).")


class EmbeddedPlanOutputSerializer(serializers.Serializer[Any]):
    """The embedded judge's plan, fixed when the evaluation started (README: The embedded judge)."""

    properties = EmbeddedPlanPropertyOutputSerializer(many=True, help_text="In the spec's order.")
    taught_review_ids = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Reviews that taught this evaluation's judge: estimates of its error leave them out.",
    )


class EvaluationBatchOutputSerializer(serializers.Serializer[Any]):
    """Our addition: a batch evaluation's batches and what batch mode saved (evaluations.batch.batch_summary)."""

    batches = serializers.ListField(child=serializers.DictField(), help_text="id, status, requests, read")
    submitted = serializers.IntegerField(help_text="Requests submitted in batches.")
    read = serializers.IntegerField(help_text="Batch results read so far.")
    cost_usd = serializers.FloatField(help_text="What the batch results read so far cost, at the batch price.")
    saved_usd = serializers.FloatField(help_text="What the same calls would have cost more interactively.")


# Serializes the dict evaluations.trace.evaluation_trace builds (the evaluation page shows the same).
class EvaluationTraceOutputSerializer(serializers.Serializer[Any]):
    """Our addition: how the evaluation was judged: models, prompt, calls, tokens, cost and progress."""

    task_id = serializers.CharField(allow_null=True)
    requested_model = serializers.CharField()
    model_used = serializers.CharField(allow_null=True)
    offline_judge = serializers.BooleanField()
    fallback_reason = serializers.CharField(allow_null=True, help_text="Why the model used is not the one requested.")
    prompt_version = serializers.CharField()
    config_hash = serializers.CharField(allow_null=True)
    calls = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    cost_usd = serializers.FloatField()
    calls_outcome_unknown = serializers.IntegerField(
        help_text="Calls sent whose worker died before the answer came: billed or not, unknown; costed at their "
        "ceiling in cost_usd."
    )
    progress = EvaluationProgressOutputSerializer()
    chunks = serializers.IntegerField()
    embedded_plan = EmbeddedPlanOutputSerializer(allow_null=True, help_text="Null for an LLM judge.")
    batch = EvaluationBatchOutputSerializer(allow_null=True, help_text="Batch mode's progress; null: interactive.")


# Documentation only: the analysis is stored as JSON when the evaluation finishes and answered as stored (each
# distribution's keys in the spec's value order); tests/test_schema.py checks it has these fields.
class DistributionAnalysisOutputSerializer(serializers.Serializer[Any]):
    """One property's requested, expected and judged distributions, in percent."""

    property_name = serializers.CharField()
    total_samples = serializers.IntegerField()
    requested_distributions = serializers.DictField(child=serializers.FloatField(), help_text="Percent per value.")
    expected_distributions = serializers.DictField(
        child=serializers.FloatField(), help_text="Percent per value achievable with this many samples."
    )
    evaluated_distributions = serializers.DictField(
        child=serializers.FloatField(), help_text="Percent per value as the judge classified the samples."
    )
    observed_distributions = serializers.DictField(child=serializers.FloatField())
    total_samples_analyzed = serializers.IntegerField()


# Documentation only: an evaluation can hold thousands of these, so EvaluationDetailOutputSerializer streams
# them from one values_list; tests/test_schema.py checks the rows match these fields, in this order.
class SampleClassificationOutputSerializer(serializers.Serializer[Any]):
    """One sample's judged property values."""

    id = WireUUIDField()
    evaluation_id = WireUUIDField()
    sample_identifier = serializers.CharField()
    classifications = serializers.DictField(
        child=serializers.CharField(), allow_null=True, help_text="Property → judged value; null if the judge failed."
    )
    created_at = serializers.DateTimeField()


class EvaluationSummaryOutputSerializer(serializers.Serializer[Any]):
    id = WireUUIDField(source="code")
    run_id = WireUUIDField(source="run.code")
    status = serializers.ChoiceField(choices=Evaluation.Status.choices)
    status_display = serializers.CharField(source="get_status_display")
    conformance_score = serializers.FloatField(allow_null=True, help_text="0-100; null until the evaluation ends.")
    created_at = serializers.DateTimeField()
    created_by_email = serializers.CharField(source="created_by.email", allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)


class EvaluationDetailOutputSerializer(EvaluationSummaryOutputSerializer):
    company_id = WireUUIDField(source="company.code")
    distribution_analysis = serializers.SerializerMethodField()
    created_by = serializers.IntegerField(source="created_by_id", allow_null=True)
    conformance_explanation = serializers.CharField(allow_null=True)
    conformant_areas = serializers.CharField(allow_null=True)
    non_conformant_areas = serializers.CharField(allow_null=True)
    sample_classifications = serializers.SerializerMethodField()
    duration_seconds = serializers.FloatField(allow_null=True)
    error_message = serializers.CharField(allow_null=True)
    trace = serializers.SerializerMethodField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(DistributionAnalysisOutputSerializer(many=True, allow_null=True))
    def get_distribution_analysis(self, evaluation: Evaluation) -> list[dict[str, Any]] | None:
        # The stored analysis with each distribution's keys in the spec's value order (jsonb does not keep it).
        if evaluation.distribution_analysis is None or not evaluation.statistics:
            return evaluation.distribution_analysis
        values = {p["property_name"]: p["values"] for p in evaluation.statistics["properties"]}
        return [
            {
                key: (
                    {v: item[key][v] for v in values[item["property_name"]]}
                    if key.endswith("_distributions")
                    else item[key]
                )
                for key in item
            }
            for item in evaluation.distribution_analysis
        ]

    @extend_schema_field(SampleClassificationOutputSerializer(many=True))
    def get_sample_classifications(self, evaluation: Evaluation) -> list[dict[str, Any]]:
        # Empty until the evaluation succeeds; then one row per sample, in sample order.
        if evaluation.status != Evaluation.Status.SUCCEEDED:
            return []
        rows = (
            evaluation.classifications.select_related("sample")
            .order_by("sample__position")
            .values_list("code", "sample__identifier", "classifications", "created_at")
        )
        eval_id = str(evaluation.code)
        # A serializer per row costs more than the query for thousands of rows: build the dicts directly.
        to_iso = serializers.DateTimeField().to_representation
        return [
            {
                "id": str(code),
                "evaluation_id": eval_id,
                "sample_identifier": identifier,
                "classifications": judged,
                "created_at": to_iso(created) if created else None,
            }
            for code, identifier, judged, created in rows.iterator(chunk_size=2000)
        ]

    @extend_schema_field(EvaluationTraceOutputSerializer)
    def get_trace(self, evaluation: Evaluation) -> dict[str, Any]:
        return EvaluationTraceOutputSerializer(evaluation_trace(evaluation)).data


class EvaluationStatisticsOutputSerializer(serializers.Serializer[Evaluation]):
    id = WireUUIDField(source="code")
    status = serializers.ChoiceField(choices=Evaluation.Status.choices)
    statistics = serializers.SerializerMethodField(
        help_text="Per property: chi-square p-value, Wilson intervals, agreement and confusion matrix, and "
        "`human_review`: human labels against the judge (reviewed: samples with any label; blind_random: the "
        "labels that fed the numbers; paired: those the judge decided; extra_reviewed, design, minimum, "
        "partial_minimum, partial, census, message, judge_accuracy in percent, kappa, kappa_ci, fit_for_use, "
        "judge_confusion, corrected_distributions in percent over every sample of the run, corrected_ci, "
        "labels_to_halve, method, notes; every key present, the numbers null below `partial_minimum` blind random "
        "labels with `message` saying so, fit_for_use null below `minimum`); null until the evaluation ends.",
    )

    @extend_schema_field(serializers.JSONField(allow_null=True))
    def get_statistics(self, evaluation: Evaluation) -> dict[str, Any] | None:
        # Reviews arrive after the evaluation ended: the human_review blocks are computed when read.
        return statistics_with_human_review(evaluation=evaluation)


class ReviewOutputSerializer(serializers.Serializer[Any]):
    """A human label: the true value of one property of one sample, by one reviewer."""

    id = WireUUIDField(source="code")
    sample_identifier = serializers.CharField(source="sample.identifier")
    property_name = serializers.CharField()
    value = serializers.CharField()
    selection = serializers.ChoiceField(
        choices=Review.Selection.choices,
        help_text="random: drawn at random, by the review queue or a client (blind ones feed the estimates); "
        "disagreement, manual, api: counted apart.",
    )
    stratum = serializers.CharField(
        help_text="For a queue label: the judged value (or `(undecided)`, `(failed)`) it was drawn within."
    )
    inclusion_probability = serializers.FloatField(allow_null=True)
    blind = serializers.BooleanField(help_text="Given without seeing the judged or assigned value.")
    reviewer_email = serializers.CharField(source="reviewer.email")
    evaluation_id = WireUUIDField(
        source="evaluation.code", allow_null=True, help_text="The evaluation the label was made from."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# --- Input ---


class EvaluationCreateSerializer(serializers.Serializer[Any]):
    run_id = WireUUIDField()
    evaluation_model = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    batch = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Our addition: judge through the provider's batch API at half the price, answered within 24 hours "
        "(usually far sooner). Absent or null: batch mode for runs of at least JUDGE_BATCH_MIN_SAMPLES samples. "
        "A model without a batch API gets a 400.",
    )


class ReviewCreateSerializer(serializers.Serializer[Any]):
    sample_identifier = serializers.CharField(max_length=255)
    property_name = serializers.CharField(max_length=200)
    value = serializers.CharField(max_length=500, help_text="One of the property's values.")
    selection = serializers.ChoiceField(
        choices=Review.Selection.choices,
        default=Review.Selection.API,
        help_text="How the sample was chosen. `api` (the default), `manual`, `disagreement`: by hand or by any rule "
        "other than chance; counted, never estimated on. `random`: you drew it at random from the run's samples; "
        "with `blind` it feeds kappa, judge accuracy and the corrected distribution.",
    )
    inclusion_probability = serializers.FloatField(
        required=False,
        allow_null=True,
        min_value=0.0,
        max_value=1.0,
        help_text="For `random` only: the probability your draw had of including this sample, in (0, 1]. Omitted: "
        "a simple random draw over the run, each sample as likely as any other.",
    )
    blind = serializers.BooleanField(
        default=False,
        help_text="For `random`: the reviewer gave the label without seeing the judged or the assigned value. Only "
        "blind random labels feed the estimates (a reviewer shown a model's answer agrees with it more).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        probability = attrs.get("inclusion_probability")
        if probability is not None and attrs["selection"] != Review.Selection.RANDOM:
            raise serializers.ValidationError({"inclusion_probability": "Only a random label has one."})
        if probability is not None and probability <= 0:
            raise serializers.ValidationError({"inclusion_probability": "Must be above 0 (and at most 1)."})
        return attrs


# --- Compare (our addition): evaluations/gate.py builds the dict these document ---


class NumberChangeOutputSerializer(serializers.Serializer[Any]):
    baseline = serializers.FloatField(allow_null=True)
    candidate = serializers.FloatField(allow_null=True)
    delta = serializers.FloatField(allow_null=True, help_text="candidate - baseline.")


class ShareChangeOutputSerializer(NumberChangeOutputSerializer):
    interval = serializers.ListField(
        child=serializers.FloatField(),
        allow_null=True,
        help_text="95% interval of delta in percentage points (Newcombe's hybrid score interval); null with no samples.",
    )
    significant = serializers.BooleanField(help_text="The interval leaves out 0: the change is beyond noise.")


class ValueChangeOutputSerializer(serializers.Serializer[Any]):
    value = serializers.CharField()
    baseline = serializers.FloatField(allow_null=True)
    candidate = serializers.FloatField(allow_null=True)
    delta = serializers.FloatField(allow_null=True)
    interval = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    significant = serializers.BooleanField()


class PropertyChangeOutputSerializer(serializers.Serializer[Any]):
    property_name = serializers.CharField()
    tvd = NumberChangeOutputSerializer(help_text="Total variation distance, evaluated vs expected, in points.")
    agreement = ShareChangeOutputSerializer(help_text="Percent of samples judged as assigned.")
    evaluated = ValueChangeOutputSerializer(many=True, help_text="Each value's evaluated share, in percent.")


class GateCheckOutputSerializer(serializers.Serializer[Any]):
    check = serializers.ChoiceField(choices=["score_drop", "tvd_rise", "agreement_drop"])
    property_name = serializers.CharField(allow_null=True, help_text="null for the score.")
    change = serializers.FloatField(allow_null=True, help_text="The drop or rise, positive when worse.")
    threshold = serializers.FloatField()
    failed = serializers.BooleanField()


class GateThresholdsOutputSerializer(serializers.Serializer[Any]):
    score_drop = serializers.FloatField()
    tvd_rise = serializers.FloatField()
    agreement_drop = serializers.FloatField()


class EvaluationCompareOutputSerializer(serializers.Serializer[Any]):
    """Our addition: what changed from a baseline evaluation to this one, and the regression gate's verdict."""

    baseline = WireUUIDField()
    candidate = WireUUIDField()
    score = NumberChangeOutputSerializer(help_text="Conformance score, 0-100.")
    properties = PropertyChangeOutputSerializer(many=True, help_text="The properties both evaluated.")
    properties_not_shared = serializers.ListField(child=serializers.CharField())
    thresholds = GateThresholdsOutputSerializer(help_text="The GATE_* settings the checks used.")
    checks = GateCheckOutputSerializer(many=True)
    verdict = serializers.ChoiceField(choices=["PASS", "REGRESSION"])


class EvaluationMetaSerializer(serializers.Serializer[Any]):
    """Our addition: an evaluation's name and note (the Dataframer evaluation object has neither)."""

    id = WireUUIDField(source="code", read_only=True)
    name = serializers.CharField(max_length=200, allow_blank=True, required=False)
    note = serializers.CharField(max_length=5000, allow_blank=True, required=False)
    display_name = serializers.CharField(read_only=True, help_text="The name, or '<run name> · <judge>' without one.")
