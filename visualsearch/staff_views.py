"""The staff page for the embedding models: which one serves searches, how complete the
others' indexes are, their hold-out metrics; index one in the background, promote it,
roll back. Plain POST forms; views parse, call services, redirect."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from visualsearch import selectors, services, tasks
from visualsearch.duplicates.views import staff_required


@require_GET
@staff_required
def models_page(request: HttpRequest) -> HttpResponse:
    overview = selectors.model_overview()
    active = next(m for m in overview if m.state == "active")
    readiness = {m.name: services.model_readiness(name=m.name) for m in overview if m.vectors and m.name != active.name}
    activations = selectors.model_activations_recent()
    return render(
        request,
        "visualsearch/models.html",
        {
            "rows": [(m, readiness.get(m.name)) for m in overview],
            "active": active,
            "ttl_seconds": settings.VISUALSEARCH_ACTIVE_MODEL_TTL,
            "activations": activations,
            "rollback_to": activations[0].previous_name if activations else None,
        },
    )


@require_POST
@staff_required
def model_index(request: HttpRequest, name: str) -> HttpResponse:
    try:
        services.model_index_request(name=name)
    except services.ModelNotReady as exc:
        messages.error(request, str(exc))
    else:
        tasks.model_index_schedule(name=name)
        messages.success(request, f"Indexing {name} in the background; new images are embedded with it too from now on.")
    return redirect("visualsearch:models")


@require_POST
@staff_required
def model_promote(request: HttpRequest, name: str) -> HttpResponse:
    try:
        model = services.model_promote(name=name, actor=request.user)
    except services.ModelNotReady as exc:
        messages.error(request, f"{name} was not promoted: {exc}")
    else:
        messages.success(request, f"{model.name} now serves every search.")
    return redirect("visualsearch:models")


@require_POST
@staff_required
def model_rollback(request: HttpRequest) -> HttpResponse:
    try:
        model = services.model_rollback(actor=request.user)
    except services.ModelNotReady as exc:
        messages.error(request, f"Not rolled back: {exc}")
    else:
        messages.success(request, f"Rolled back: {model.name} serves every search again.")
    return redirect("visualsearch:models")
