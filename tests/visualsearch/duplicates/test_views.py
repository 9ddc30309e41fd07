"""The review queue page and its actions: staff only, POST forms, JSON for the script, audit."""

import pytest
from django.urls import reverse

from visualsearch.duplicates.models import DuplicateFlag, DuplicateFlagAction

pytestmark = pytest.mark.django_db

QUEUE = "/review/duplicates/"


def test_anonymous_visitors_are_sent_to_log_in(client, embedded):
    response = client.get(QUEUE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login")) and "next=/review/duplicates/" in response["Location"]
    flag = DuplicateFlag.objects.first()
    response = client.post(reverse("duplicates:dismiss", args=[flag.pk]))
    assert response.status_code == 302
    flag.refresh_from_db()
    assert flag.status == "open"


def test_signed_in_shoppers_are_refused(client, shopper, embedded):
    client.force_login(shopper)
    assert client.get(QUEUE).status_code == 403
    flag = DuplicateFlag.objects.first()
    assert client.post(reverse("duplicates:confirm", args=[flag.pk])).status_code == 403
    assert client.post(reverse("duplicates:bulk"), {"action": "dismiss", "flags": [flag.pk]}).status_code == 403
    assert not DuplicateFlagAction.objects.exists()


def test_the_nav_link_is_for_staff_only(client, shopper, staff):
    client.force_login(shopper)
    assert "Review duplicates" not in client.get("/").content.decode()
    client.force_login(staff)
    assert "Review duplicates" in client.get("/").content.decode()


def test_staff_see_open_flags_by_score_with_counts_and_evidence(client, staff, embedded, django_assert_max_num_queries):
    client.force_login(staff)
    with django_assert_max_num_queries(12):
        response = client.get(QUEUE)
    assert response.status_code == 200
    html = response.content.decode()
    flags = list(response.context["flags"])
    assert [f.score for f in flags] == sorted((f.score for f in flags), reverse=True) and len(flags) == 3
    assert "Identical bytes" in html and "pHash Δ" in html and "Red tee (original)" in html
    assert [(t["status"], t["count"]) for t in response.context["tabs"]] == [("open", 3), ("confirmed", 0), ("dismissed", 0)]
    assert 'name="csrfmiddlewaretoken"' in html


def test_confirm_without_javascript_redirects_back_with_an_undo(client, staff, embedded):
    products, _ = embedded
    client.force_login(staff)
    flag = DuplicateFlag.objects.get(kind="exact")
    response = client.post(reverse("duplicates:confirm", args=[flag.pk]), {"next": QUEUE + "?kind=exact"}, follow=True)
    assert response.redirect_chain[-1][0] == QUEUE + "?kind=exact"
    assert "is hidden" in response.content.decode() and "Undo" in response.content.decode()
    flag.refresh_from_db()
    assert flag.status == "confirmed" and flag.hidden_product_id == products["exact"].id
    action = DuplicateFlagAction.objects.get()
    assert action.actor == staff and action.action == "confirm" and action.at


def test_keep_the_right_listing(client, staff, embedded):
    products, _ = embedded
    client.force_login(staff)
    flag = DuplicateFlag.objects.get(product_a=products["original"], product_b=products["near"])
    client.post(reverse("duplicates:confirm", args=[flag.pk]), {"keep": products["near"].id})
    flag.refresh_from_db()
    assert flag.kept_product_id == products["near"].id and flag.hidden_product_id == products["original"].id


def test_json_actions_for_the_script(client, staff, embedded):
    client.force_login(staff)
    flag = DuplicateFlag.objects.order_by("pk").first()
    response = client.post(reverse("duplicates:dismiss", args=[flag.pk]), HTTP_ACCEPT="application/json")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "dismissed" and body["counts"]["dismissed"] == 1
    assert body["undo"] == reverse("duplicates:reopen", args=[flag.pk])
    again = client.post(reverse("duplicates:dismiss", args=[flag.pk]), HTTP_ACCEPT="application/json")
    assert again.status_code == 409
    response = client.post(body["undo"], HTTP_ACCEPT="application/json")
    assert response.json()["status"] == "open"
    skip = client.post(reverse("duplicates:skip", args=[flag.pk]), HTTP_ACCEPT="application/json")
    assert skip.status_code == 200
    assert list(DuplicateFlagAction.objects.order_by("id").values_list("action", flat=True)) == ["dismiss", "reopen", "skip"]
    assert client.post(reverse("duplicates:dismiss", args=[99999999])).status_code == 404
    assert client.get(reverse("duplicates:dismiss", args=[flag.pk])).status_code == 405


def test_bulk_dismiss_and_filtered_tabs(client, staff, embedded):
    client.force_login(staff)
    ids = list(DuplicateFlag.objects.filter(kind="near").values_list("pk", flat=True))
    client.post(reverse("duplicates:bulk"), {"action": "dismiss", "flags": ids})
    assert DuplicateFlag.objects.filter(status="dismissed").count() == 2
    response = client.get(QUEUE, {"status": "dismissed"})
    assert len(response.context["flags"]) == 2 and "Dismissed: not a duplicate" in response.content.decode()
    response = client.get(QUEUE, {"kind": "exact"})
    assert [(t["status"], t["count"]) for t in response.context["tabs"]] == [("open", 1), ("confirmed", 0), ("dismissed", 0)]
    assert client.post(reverse("duplicates:bulk"), {"action": "explode", "flags": ids}).status_code == 302


def test_a_verified_flag_shows_where_the_pictures_match(client, staff, embedded):
    flag = DuplicateFlag.objects.exclude(kind="exact").first() or DuplicateFlag.objects.first()
    image_a, image_b = flag.image_a, flag.image_b
    evidence = dict(flag.evidence or {})
    evidence["decided_by"] = "verification"
    evidence["verification"] = {
        "inliers": 212, "matches": 300, "inlier_area": 0.6, "inlier_share": 0.7, "colour_shift": 1.0, "mirrored": False,
        "edits": ["cropped"], "changed": 0.04, "agreement": 0.93, "regions": {str(image_a.id): [0.1, 0.2, 0.6, 0.9], str(image_b.id): [0.0, 0.0, 1.0, 1.0]},
    }
    DuplicateFlag.objects.filter(pk=flag.pk).update(evidence=evidence)
    client.force_login(staff)
    html = client.get(QUEUE).content.decode()
    card = html[html.index(f'id="flag-{flag.pk}"'):]
    card = card[: card.index("</article>")]
    assert card.count("data-matched-region") == 2
    x, y = 0.1 * image_a.width, 0.2 * image_a.height
    assert f'<rect x="{round(x, 1)}" y="{round(y, 1)}" width="{round(0.5 * image_a.width, 1)}"' in card
    assert f'viewBox="0 0 {image_a.width} {image_a.height}"' in card
    assert "Same photo, cropped; 212 matching points line up." in card and "Changed area <b>4%</b>" in card
    assert "Same patches in place <b>93%</b>" in card
    # A flag without regions (found before verification recorded them) shows plain pictures.
    other = DuplicateFlag.objects.exclude(pk=flag.pk).first()
    other_card = html[html.index(f'id="flag-{other.pk}"'):]
    assert "data-matched-region" not in other_card[: other_card.index("</article>")]


def test_undo_says_what_it_undid_and_the_activity_log_is_linked_from_the_top(client, staff, embedded):
    client.force_login(staff)
    flag = DuplicateFlag.objects.first()
    client.post(reverse("duplicates:confirm", args=[flag.pk]))
    undone = client.post(reverse("duplicates:reopen", args=[flag.pk]), HTTP_ACCEPT="application/json").json()
    assert undone["message"] == f"Undone: #{flag.pk} is open again and both listings are visible." and "undo" not in undone
    again = client.post(reverse("duplicates:reopen", args=[flag.pk]), HTTP_ACCEPT="application/json").json()
    assert again["message"] == f"#{flag.pk} was already open."  # repeating an undo changes nothing
    client.post(reverse("duplicates:dismiss", args=[flag.pk]))
    page = client.get(QUEUE)
    html = page.content.decode()
    assert html.index('href="#activity"') < html.index('data-queue')  # above the queue
    assert 'id="activity"' in html
    messages = client.post(reverse("duplicates:reopen", args=[flag.pk]), follow=True).content.decode()
    assert f"Undone: #{flag.pk} is open again; it was dismissed." in messages
