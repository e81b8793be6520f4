"""Every API viewset, registered once. Dataframer paths end in `/`."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from anonymization.api.views import AnonymizationRunViewSet
from evaluations.api.views import EvaluationViewSet
from redteam.api.views import RedTeamRunViewSet, RedTeamSpecViewSet
from runs.api.views import RunViewSet, SeedDatasetViewSet, SpecViewSet

dataframer = SimpleRouter(trailing_slash=True)
dataframer.register("specs", SpecViewSet, basename="spec")
dataframer.register("runs", RunViewSet, basename="run")
dataframer.register("seed-datasets", SeedDatasetViewSet, basename="seed-dataset")
dataframer.register("evaluations", EvaluationViewSet, basename="evaluation")
dataframer.register("anonymization-runs", AnonymizationRunViewSet, basename="anonymization-run")
dataframer.register("red-team-specs", RedTeamSpecViewSet, basename="red-team-spec")
dataframer.register("red-team-runs", RedTeamRunViewSet, basename="red-team-run")
