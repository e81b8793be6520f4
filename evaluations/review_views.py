"""Human review pages: the review queue with undo, and a sample's labels corrected in place."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST

from companies.models import Membership
from runs.models import Sample

from .access import get_evaluation_for_user
from .forms import ReviewLabelForm, ReviewQueueForm
from .human_labels import corrections_for
from .models import Evaluation, Review, SampleClassification
from .review_queue import (
    QueueMode,
    reveal,
    review_card_sample,
    review_queue,
    reviewer_history,
    sample_stratum,
)
from .reviewing import ReviewError, ReviewInput, review_save, review_withdraw

if TYPE_CHECKING:
    from config.http import HtmxHttpRequest


def _my_label(request: HtmxHttpRequest, sample: Sample, prop: str) -> str | None:
    """The reviewer's own label on the sample's property, if any."""
    found: str | None = (
        Review.objects.filter(reviewer=request.user, sample=sample, property_name=prop)
        .values_list("value", flat=True)
        .first()
    )
    return found


def _review_card(request: HtmxHttpRequest, evaluation: Evaluation, queue: dict[str, Any]) -> dict[str, Any]:
    """The review card's context: the sample to label (the queue's next, or one asked for by `back`/`sample`), the
    property's values, the reviewer's own label, progress, the links for skip / back / forward, and, after an
    answer, what the judge said about the sample just labelled.

    The random queue is blind: until the reviewer has labelled the sample on the property, the card holds neither
    its judged nor its assigned values (of any property: they hint at each other)."""
    properties = evaluation.run.spec_version.parsed_properties
    by_name = {p.name: p for p in properties}
    prop = by_name.get(queue["prop"]) or properties[0]
    mode = QueueMode(queue["mode"])
    state = review_queue(
        evaluation=evaluation, prop=prop.name, mode=mode, reviewer_id=request.user.id, skip=queue["skip"]
    )
    sample, back = state.sample, queue["back"]
    if back:
        history = reviewer_history(evaluation=evaluation, reviewer_id=request.user.id, prop=prop.name, mode=mode)
        earlier = history[back - 1 : back]
        if earlier:
            sample = earlier[0].sample
        else:
            back = 0
    elif queue["sample"]:
        sample = review_card_sample(evaluation=evaluation, sample_code=str(queue["sample"])) or sample
    mine = _my_label(request, sample, prop.name) if sample is not None else None
    blind = mode == QueueMode.RANDOM and mine is None
    judged: dict[str, str] = {}
    if sample is not None and not blind:
        row = SampleClassification.objects.filter(evaluation=evaluation, sample=sample).first()
        judged = {p.name: row.stratum(p.name) if row else SampleClassification.FAILED for p in properties}
    answered = None
    if mode == QueueMode.RANDOM and queue["answered"]:
        # Only a sample the reviewer has labelled: the code comes from the URL, and the judged value must never
        # reach a card before its answer.
        previous = review_card_sample(evaluation=evaluation, sample_code=str(queue["answered"]))
        label = _my_label(request, previous, prop.name) if previous is not None else None
        if previous is not None and label is not None:
            answered = reveal(evaluation=evaluation, sample=previous, prop=prop.name, label=label)
    base = {"property": prop.name, "mode": mode.value}

    def link(**extra: Any) -> str:
        return f"{reverse('evaluations:review', args=[evaluation.code])}?{urlencode({**base, **extra}, doseq=True)}"

    undone = None
    if queue["sample"] and queue["undone"] in prop.values and sample is not None:
        # After an undo: HTMX's answer, or the page a plain form post is redirected to (the value is then from the
        # URL, hence the check against the property's values).
        undone = {"property_name": prop.name, "value": queue["undone"], "sample": sample}
    return {
        "undone": undone,
        "answered": answered,
        "evaluation": evaluation,
        "properties": [p.name for p in properties],
        "prop": prop.name,
        "mode": mode.value,
        "sample": sample,
        "blind": blind,
        "values": [(index, value) for index, value in enumerate(prop.values, start=1)],
        "judged_value": judged.get(prop.name),
        "others": [
            {"name": p.name, "assigned": sample.properties.get(p.name), "judged": judged.get(p.name)}
            for p in properties
        ]
        if sample is not None and not blind
        else [],
        "mine": mine,
        "state": state,
        "enough": state.reviewed >= state.total,
        "skip": queue["skip"],
        "back": back,
        "skip_url": link(skip=[*queue["skip"], str(sample.code)]) if sample is not None else None,
        "back_url": link(skip=queue["skip"], back=back + 1),
        "forward_url": link(skip=queue["skip"], back=back - 1) if back else None,
    }


def _render_card(request: HtmxHttpRequest, evaluation: Evaluation, queue: dict[str, Any], **extra: Any) -> HttpResponse:
    context = _review_card(request, evaluation, queue) | extra
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "evaluations/review.html#review-card", context, status=extra.get("status", 200))
    return render(request, "evaluations/review.html", context, status=extra.get("status", 200))


@login_required
def evaluation_review(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    """The review queue: one sample at a time, a label with one key press. Viewers see it (read only)."""
    evaluation, membership = get_evaluation_for_user(request.user, code)
    if evaluation.status != Evaluation.Status.SUCCEEDED:
        raise Http404("Only a finished evaluation can be reviewed.")
    queue = ReviewQueueForm(request.GET).queue()
    return _render_card(request, evaluation, queue, membership=membership)


def _rw_succeeded_evaluation(request: HtmxHttpRequest, code: UUID) -> tuple[Evaluation, Membership]:
    evaluation, membership = get_evaluation_for_user(request.user, code)
    if not membership.can_write:
        raise PermissionDenied("Your role in this company is read-only.")
    if evaluation.status != Evaluation.Status.SUCCEEDED:
        raise Http404("Only a finished evaluation can be reviewed.")
    return evaluation, membership


def _queue_redirect(evaluation: Evaluation, queue: dict[str, Any], **extra: Any) -> HttpResponse:
    params = {"property": queue["prop"], "mode": queue["mode"], "skip": queue["skip"], **extra}
    return redirect(f"{reverse('evaluations:review', args=[evaluation.code])}?{urlencode(params, doseq=True)}")


@login_required
@require_POST
def evaluation_review_label(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    """Store one label from the queue, then show the next card (HTMX) or redirect to it (a plain form post)."""
    evaluation, membership = _rw_succeeded_evaluation(request, code)
    queue = ReviewQueueForm(request.POST).queue()
    form = ReviewLabelForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text())
    found = evaluation.run.samples.filter(code=form.cleaned_data["sample"]).values_list("id", "identifier").first()
    if found is None:
        raise Http404("No such sample in this evaluation's run.")
    sample_id, identifier = found
    mode, prop = QueueMode(queue["mode"]), form.cleaned_data["property"]
    item = ReviewInput(identifier, prop, form.cleaned_data["value"], mode.selection)
    if mode == QueueMode.RANDOM:
        # The label's design: drawn at random within this evaluation's stratum of the sample, and given blind.
        stratum = sample_stratum(evaluation=evaluation, sample_id=sample_id, prop=prop)
        item = dataclasses.replace(item, stratum=stratum, blind=True)
    try:
        review_save(evaluation=evaluation, reviewer=request.user, items=[item])
    except ReviewError as exc:
        return HttpResponseBadRequest(str(exc))
    # The next card, which first shows what the judge said about this sample (random queue only).
    answered = form.cleaned_data["sample"] if mode == QueueMode.RANDOM else None
    queue = {**queue, "prop": item.property_name, "back": 0, "sample": None, "answered": answered}
    if request.htmx:
        return _render_card(request, evaluation, queue, membership=membership)
    return _queue_redirect(evaluation, queue, **({"answered": str(answered)} if answered else {}))


@login_required
@require_POST
def evaluation_review_undo(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    """Withdraw the reviewer's most recent label on the property and show that sample again."""
    evaluation, membership = _rw_succeeded_evaluation(request, code)
    queue = ReviewQueueForm(request.POST).queue()
    names = [p.name for p in evaluation.run.spec_version.parsed_properties]
    prop = queue["prop"] if queue["prop"] in names else names[0]
    mode = QueueMode(queue["mode"])
    latest = reviewer_history(evaluation=evaluation, reviewer_id=membership.user.id, prop=prop, mode=mode).first()
    queue = {**queue, "prop": prop, "back": 0, "sample": None, "undone": "", "answered": None}
    if latest is not None:
        queue["sample"], queue["undone"] = latest.sample.code, latest.value
        review_withdraw(review=latest)
    if request.htmx:
        return _render_card(request, evaluation, queue, membership=membership)
    return _queue_redirect(
        evaluation, queue, **({"sample": str(queue["sample"]), "undone": queue["undone"]} if latest else {})
    )


@login_required
@require_http_methods(["GET", "POST"])
def evaluation_sample_correct(request: HtmxHttpRequest, code: UUID, sample_code: UUID) -> HttpResponse:
    """Correct a judged value in place, from the sample table or the sample page: a `manual` label. A GET (the
    table row's "Correct" button) answers the row's forms, one per property; a POST saves one of them."""
    evaluation, membership = _rw_succeeded_evaluation(request, code)
    sample = get_object_or_404(evaluation.run.samples.all(), code=sample_code)
    properties = evaluation.run.spec_version.parsed_properties
    if request.method == "GET":
        if not request.htmx:  # the forms alone are a fragment: the sample page has them too
            return redirect(reverse("evaluations:sample", args=[evaluation.code, sample.code]) + "#correct")
        context = {
            "evaluation": evaluation,
            "sample": sample,
            "corrections": corrections_for(properties, sample.id, membership.user_id),
        }
        return render(request, "evaluations/_corrections.html", context)
    prop, value = request.POST.get("property", ""), request.POST.get("value", "")
    try:
        review_save(
            evaluation=evaluation,
            reviewer=request.user,
            items=[ReviewInput(sample.identifier, prop, value, Review.Selection.MANUAL)],
        )
    except ReviewError as exc:
        return HttpResponseBadRequest(str(exc))
    if request.htmx:
        values = {p.name: p.values for p in properties}[prop]
        context = {
            "evaluation": evaluation,
            "sample": sample,
            "name": prop,
            "values": values,
            "mine": value,
            "saved": True,
        }
        return render(request, "evaluations/_correct.html", context)
    messages.success(request, f"Saved: {prop} of {sample.identifier} is {value}.")
    return redirect("evaluations:detail", code=evaluation.code)
