"""The merchandisers' duplicate review queue. Views parse, call services/selectors, render.

Every action is a POST form (works without JavaScript: redirect back to the queue with a
message). ``static/js/duplicates.js`` sends the same forms with ``Accept: application/json``
and gets JSON back, so a reviewer moves through the queue without page loads.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from visualsearch.duplicates import selectors, services
from visualsearch.duplicates.forms import BulkForm, ConfirmForm, QueueFilterForm
from visualsearch.duplicates.models import DuplicateFlag

FLAGS_PER_PAGE = 20


def staff_required(view):
    """Anonymous visitors go to the admin login; signed-in non-staff get 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not request.user.is_staff:
            raise PermissionDenied("The duplicate review queue is for staff.")
        return view(request, *args, **kwargs)

    return wrapper


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("duplicates:queue")


def _done(request: HttpRequest, *, flag: DuplicateFlag | None, message: str, undo: bool = True, status: int = 200) -> HttpResponse:
    if _wants_json(request):
        payload = {
            "ok": status == 200,
            "message": message,
            "counts": selectors.duplicate_flag_counts(),
        }
        if flag is not None:
            payload.update(flag=flag.pk, status=flag.status)
            if undo:
                payload["undo"] = reverse("duplicates:reopen", args=[flag.pk])
        return JsonResponse(payload, status=status)
    if status == 200:
        messages.success(request, message, extra_tags=f"undo:{flag.pk}" if flag is not None and undo else "")
    else:
        messages.error(request, message)
    return redirect(_back(request))


@require_GET
@staff_required
def queue(request: HttpRequest) -> HttpResponse:
    choices = selectors.duplicate_filter_choices()
    form = QueueFilterForm(data=request.GET or None, merchants=choices["merchants"], categories=choices["categories"])
    filters = form.filters()
    flags = selectors.duplicate_flag_list(filters=filters, reviewer=request.user)
    page = Paginator(flags, FLAGS_PER_PAGE).get_page(request.GET.get("page"))
    for flag in page.object_list:
        flag.explained = selectors.duplicate_flag_explain(
            kind=flag.kind, evidence=flag.evidence or {}, hash_distance=flag.hash_distance
        )
        # The order duplicate_flag_confirm hides by: listing time, then id on a tie.
        a, b = flag.product_a, flag.product_b
        flag.b_is_newer = (b.created_at, b.id) > (a.created_at, a.id)
        flag.a_is_newer = not flag.b_is_newer
        flag.listed_together = a.created_at == b.created_at
        flag.differences = selectors.duplicate_pair_differences(a=a, b=b)
        flag.match_a = selectors.duplicate_flag_matched_box(evidence=flag.evidence, image=flag.image_a)
        flag.match_b = selectors.duplicate_flag_matched_box(evidence=flag.evidence, image=flag.image_b)
    base_query = {k: v for k, v in (("kind", filters.kind), ("merchant", filters.merchant), ("category", filters.category)) if v}
    tabs = [
        {
            "status": status,
            "label": label,
            "count": count,
            "url": "?" + urlencode({"status": status, **base_query}),
            "current": status == filters.status,
        }
        for (status, label), count in zip(
            DuplicateFlag.Status.choices, selectors.duplicate_flag_counts(filters=filters).values(), strict=True
        )
    ]
    return render(
        request,
        "duplicates/queue.html",
        {
            "form": form,
            "filters": filters,
            "page": page,
            "flags": page.object_list,
            "tabs": tabs,
            "is_filtered": bool(base_query),
            "recent": selectors.duplicate_actions_recent(),
            "here": request.get_full_path(),
        },
    )


def _flag_action(request: HttpRequest, pk: int, act) -> HttpResponse:
    flag = get_object_or_404(DuplicateFlag, pk=pk)
    try:
        return act(flag)
    except services.FlagNotOpen as exc:
        return _done(request, flag=exc.flag, message=f"Flag #{pk} was already {exc.flag.status}.", undo=False, status=409)


@require_POST
@staff_required
def confirm(request: HttpRequest, pk: int) -> HttpResponse:
    form = ConfirmForm(data=request.POST)
    keep = form.cleaned_data.get("keep") if form.is_valid() else None

    def act(flag):
        try:
            flag = services.duplicate_flag_confirm(flag=flag, actor=request.user, keep_product_id=keep)
        except ValueError as exc:
            return _done(request, flag=None, message=str(exc), status=400)
        return _done(request, flag=flag, message=f"Confirmed #{flag.pk}: “{flag.hidden_product.title}” is hidden, “{flag.kept_product.title}” stays.")

    return _flag_action(request, pk, act)


@require_POST
@staff_required
def dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    def act(flag):
        flag = services.duplicate_flag_dismiss(flag=flag, actor=request.user)
        return _done(request, flag=flag, message=f"Dismissed #{flag.pk}: not a duplicate; this pair will not be flagged again.")

    return _flag_action(request, pk, act)


@require_POST
@staff_required
def skip(request: HttpRequest, pk: int) -> HttpResponse:
    def act(flag):
        flag = services.duplicate_flag_skip(flag=flag, actor=request.user)
        return _done(request, flag=flag, message=f"Skipped #{flag.pk}: it moves to the end of your queue.", undo=False)

    return _flag_action(request, pk, act)


@require_POST
@staff_required
def reopen(request: HttpRequest, pk: int) -> HttpResponse:
    flag = get_object_or_404(DuplicateFlag, pk=pk)
    was = flag.status
    flag = services.duplicate_flag_reopen(flag=flag, actor=request.user)
    if was == DuplicateFlag.Status.CONFIRMED:
        message = f"Undone: #{flag.pk} is open again and both listings are visible."
    elif was == DuplicateFlag.Status.DISMISSED:
        message = f"Undone: #{flag.pk} is open again; it was dismissed."
    else:
        message = f"#{flag.pk} was already open."
    return _done(request, flag=flag, message=message, undo=False)


@require_POST
@staff_required
def bulk(request: HttpRequest) -> HttpResponse:
    form = BulkForm(data=request.POST)
    if not form.is_valid():
        return _done(request, flag=None, message="Select at least one flag and an action.", status=400)
    done, not_open = services.duplicate_flags_bulk(
        flag_ids=form.cleaned_data["flags"], action=form.cleaned_data["action"], actor=request.user
    )
    verb = "Confirmed" if form.cleaned_data["action"] == "confirm" else "Dismissed"
    message = f"{verb} {len(done)} flag{'s' if len(done) != 1 else ''}."
    if not_open:
        message += f" {len(not_open)} already resolved by someone else."
    if _wants_json(request):
        return JsonResponse({"ok": True, "message": message, "done": done, "not_open": not_open, "counts": selectors.duplicate_flag_counts()})
    messages.success(request, message)
    return redirect(_back(request))
