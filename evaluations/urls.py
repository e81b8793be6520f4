from __future__ import annotations

from django.urls import path, register_converter

from . import compare_views, review_views, views


class ExportFormat:
    regex = "csv|jsonl"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ExportFormat, "export_format")


app_name = "evaluations"

urlpatterns = [
    path("evaluations/", views.evaluation_list_page, name="list"),
    path("evaluations/compare/", compare_views.evaluation_compare, name="compare"),
    path("evaluations/compare/diff.csv", compare_views.evaluation_compare_diff_csv, name="compare-diff-csv"),
    path("evaluations/<uuid:code>/", views.evaluation_detail, name="detail"),
    path("evaluations/<uuid:code>/samples/<uuid:sample_code>/", views.evaluation_sample, name="sample"),
    path("evaluations/<uuid:code>/review/", review_views.evaluation_review, name="review"),
    path("evaluations/<uuid:code>/review/label/", review_views.evaluation_review_label, name="review-label"),
    path("evaluations/<uuid:code>/review/undo/", review_views.evaluation_review_undo, name="review-undo"),
    path(
        "evaluations/<uuid:code>/samples/<uuid:sample_code>/correct/",
        review_views.evaluation_sample_correct,
        name="sample-correct",
    ),
    path("evaluations/<uuid:code>/export.<export_format:fmt>", views.evaluation_export, name="export"),
    path("evaluations/<uuid:code>/cancel/", views.evaluation_cancel_view, name="cancel"),
    path("evaluations/<uuid:code>/rename/", views.evaluation_rename, name="rename"),
    path("runs/<uuid:code>/evaluate/", views.evaluation_start, name="start"),
    path("runs/<uuid:code>/evaluations/", views.run_evaluations_table, name="run-evaluations"),
]
