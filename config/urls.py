from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from anonymization.api.views import signed_download as anonymization_download
from companies.api.views import rotate_api_key
from companies.views import SignInView
from config.api_router import dataframer
from config.unserved import urlpatterns as unserved_urlpatterns
from evaluations.api.views import EvaluationReviewViewSet, RunEvaluationsViewSet
from guardrails.api.monitors import urlpatterns as monitor_urlpatterns
from guardrails.api.views import urlpatterns as guardrail_urlpatterns
from guardrails.api.workflows import urlpatterns as workflow_urlpatterns
from runs.api.downloads import signed_download

api_urlpatterns: list[URLPattern | URLResolver] = [
    path("users/api-key/rotate", rotate_api_key, name="api-key-rotate"),
    path(
        "dataframer/runs/<str:run_pk>/evaluations/",
        RunEvaluationsViewSet.as_view({"get": "list"}),
        name="run-evaluations",
    ),
    path(
        "dataframer/evaluations/<str:evaluation_pk>/reviews/",
        EvaluationReviewViewSet.as_view({"get": "list", "post": "create"}),
        name="evaluation-reviews",
    ),
    path(
        "dataframer/evaluations/<str:evaluation_pk>/reviews/<str:review_id>/",
        EvaluationReviewViewSet.as_view({"delete": "destroy"}),
        name="evaluation-review",
    ),
    path("dataframer/", include(dataframer.urls)),
    path("dataframer/downloads/<str:token>/", signed_download, name="signed-download"),
    path("dataframer/anonymization-downloads/<str:token>/", anonymization_download, name="anonymization-download"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # GET only: its HTML renderer has no template for OPTIONS' metadata (a 500); other methods get a 405. The split
    # view serves its start-up script from `?script`, not inline (the Content-Security-Policy allows no inline script).
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api:schema", http_method_names=["get", "head"]),
        name="docs",
    ),
]

urlpatterns = [
    path("", include("companies.urls")),
    path("", include("runs.urls")),
    path("", include("evaluations.urls")),
    path("", include("guardrails.urls")),
    path("", include("anonymization.urls")),
    path("", include("redteam.urls")),
    path("login/", SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/", include((api_urlpatterns, "api"))),
    # DeepRails-compatible guardrail evaluations, monitors and Defend workflows: top-level `evaluate`, `monitor`
    # and `defend` paths, as the official client expects.
    path("", include((guardrail_urlpatterns + monitor_urlpatterns + workflow_urlpatterns, "deeprails"))),
    path("admin/", admin.site.urls),
    # The official clients' calls not implemented yet (red teaming): a JSON 404.
    *unserved_urlpatterns,
]

# Pages get templates/404.html and 500.html when DEBUG is off; API paths get JSON (config.errors).
handler500 = "config.errors.server_error"
