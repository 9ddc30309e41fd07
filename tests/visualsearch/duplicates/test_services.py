"""Detection on the embedding path, idempotency, dismissal memory, exact copies in the index, review actions."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from recommender.selectors import product_similar
from shop.models import Product
from visualsearch.duplicates import selectors, services
from visualsearch.duplicates.models import DuplicateFlag, DuplicateFlagAction, ImageFingerprint
from visualsearch.models import ImageEmbedding
from shop.filters import ProductFilters, products_matching
from visualsearch import selectors as vs_selectors
from visualsearch.selectors import nearest_hits, nearest_product_ids, product_vectors
from visualsearch.indexing import images_embed
from visualsearch.tasks import embed_images

pytestmark = pytest.mark.django_db


def pair(a, b):
    return tuple(sorted((a.id, b.id)))


def flagged():
    return {(f.product_a_id, f.product_b_id): f for f in DuplicateFlag.objects.all()}


def test_embedding_flags_exact_and_near_copies_and_nothing_else(embedded):
    products, images = embedded
    flags = flagged()
    p = products
    assert set(flags) == {pair(p["original"], p["exact"]), pair(p["original"], p["near"]), pair(p["exact"], p["near"])}
    exact = flags[pair(p["original"], p["exact"])]
    assert exact.kind == "exact" and exact.score == 1.0 and exact.status == "open"
    assert exact.evidence["identical_bytes"] is True and exact.hash_distance == 0
    near = flags[pair(p["original"], p["near"])]
    assert near.kind == "near" and near.cosine > 0.8 and near.hash_distance <= 17
    assert {near.image_a_id, near.image_b_id} == {images["original"].id, images["near"].id}
    assert 0.48 <= near.score < 1.0
    # fingerprints were stored where the images were decoded, and the images marked checked
    assert ImageFingerprint.objects.filter(checked_at__isnull=False).count() == 5


def test_rerunning_the_task_or_a_scan_creates_nothing_new(embedded):
    products, images = embedded
    before = {f.pk: (f.score, f.updated_at) for f in DuplicateFlag.objects.all()}
    embed_images.apply(args=[[img.id for img in images.values()]])  # a re-delivered task, run here
    call_command("scan_duplicates", "--no-progress")
    call_command("scan_duplicates", "--no-progress", "--only-unchecked")
    after = {f.pk: (f.score, f.updated_at) for f in DuplicateFlag.objects.all()}
    assert after == before


def test_a_dismissed_pair_is_never_flagged_again(embedded, staff):
    products, _ = embedded
    flag = flagged()[pair(products["original"], products["near"])]
    services.duplicate_flag_dismiss(flag=flag, actor=staff)
    DuplicateFlag.objects.exclude(pk=flag.pk).delete()
    call_command("scan_duplicates", "--no-progress")
    flag.refresh_from_db()
    assert flag.status == "dismissed"
    assert DuplicateFlag.objects.filter(status="open").count() == 2  # the others came back, this one did not


def test_scan_finds_duplicates_in_a_catalogue_embedded_before_detection(catalogue, settings):
    products, images = catalogue
    from visualsearch.embedding import load_embedder
    from visualsearch.reader import stored_image_open
    from visualsearch.services import embeddings_store

    vectors = load_embedder().embed([stored_image_open(img.image.name) for img in images.values()])
    embeddings_store(images=list(images.values()), vectors=vectors, model_name=settings.VISUALSEARCH_MODEL)
    assert not DuplicateFlag.objects.exists() and not ImageFingerprint.objects.exists()
    call_command("scan_duplicates", "--no-progress")
    assert DuplicateFlag.objects.filter(kind="exact").count() == 1
    assert DuplicateFlag.objects.filter(kind="near").count() == 2


def test_hidden_products_are_not_compared(catalogue):
    products, images = catalogue
    Product.objects.filter(pk=products["exact"].pk).update(status=Product.Status.HIDDEN)
    images_embed(image_ids=[img.id for img in images.values()])
    assert all(products["exact"].id not in key for key in flagged())


def test_exact_copies_share_one_index_node_and_stay_searchable(embedded):
    products, images = embedded
    rows = ImageEmbedding.objects.filter(image__in=[images["original"], images["exact"]])
    assert sorted(rows.values_list("is_canonical", flat=True)) == [False, True]
    assert len(set(rows.values_list("sha256", flat=True))) == 1
    vector = product_vectors(product_ids=[products["exact"].id])[products["exact"].id]  # the copy keeps its vector
    hits = {pid: score for pid, _, score in nearest_product_ids(vector=vector, k=5)}
    assert hits[products["original"].id] == pytest.approx(hits[products["exact"].id]) == pytest.approx(1.0, abs=1e-2)
    # a filter that only the non-canonical copy passes still finds it
    hits = nearest_product_ids(vector=vector, k=5, exclude_product_ids=[products["original"].id])
    assert products["exact"].id in {h[0] for h in hits}
    # deleting the canonical row's product hands the node to the copy
    canonical = rows.get(is_canonical=True)
    Product.objects.filter(pk=canonical.product_id).delete()
    assert ImageEmbedding.objects.get(image=images["exact"] if canonical.image_id == images["original"].id else images["original"]).is_canonical


def test_the_compiled_copies_statement_answers_as_the_orm_query(embedded, monkeypatch):
    """The listings sharing a photo are read with one compiled statement per model and
    filters, reused with other photos and other exclusions: each answer must be the ORM's."""
    products, _ = embedded
    monkeypatch.setattr(vs_selectors, "_copy_statements", {})
    north = products["original"].merchant
    vector = product_vectors(product_ids=[products["exact"].id])[products["exact"].id]
    cases = [
        (ProductFilters(), ()),
        (ProductFilters(), (products["original"].id,)),
        (ProductFilters(merchant=north.slug), ()),  # only the original of the two listings passes
        (ProductFilters(merchant=products["exact"].merchant.slug), (products["near"].id,)),
    ]
    for _ in range(2):  # the second round reads the kept statements
        for filters, excluded in cases:
            hits = nearest_hits(vector=vector, k=5, filters=filters, exclude_product_ids=excluded)
            passing = products_matching(filters).exclude(id__in=excluded)
            expected = set(passing.filter(id__in=[products["original"].id, products["exact"].id]).values_list("id", flat=True))
            copies = {h.product_id for h in hits if h.sha256}
            assert copies == expected, (filters, excluded)
            assert all(h.score == pytest.approx(1.0, abs=1e-2) for h in hits if h.sha256)
    assert len(vs_selectors._copy_statements) == 3  # one per (model, filters)


def test_confirm_hides_the_newer_listing_and_records_who(embedded, staff):
    products, _ = embedded
    flag = flagged()[pair(products["original"], products["exact"])]
    services.duplicate_flag_confirm(flag=flag, actor=staff)
    flag.refresh_from_db()
    assert flag.status == "confirmed" and flag.resolved_by == staff and flag.resolved_at
    assert flag.kept_product == products["original"] and flag.hidden_product == products["exact"]
    products["exact"].refresh_from_db()
    assert products["exact"].status == Product.Status.HIDDEN
    action = DuplicateFlagAction.objects.get(flag=flag)
    assert (action.action, action.actor, action.details["hidden"]) == ("confirm", staff, products["exact"].id)
    with pytest.raises(services.FlagNotOpen):
        services.duplicate_flag_dismiss(flag=flag, actor=staff)


def test_confirm_can_keep_either_listing_and_undo_shows_it_again(embedded, staff):
    products, _ = embedded
    flag = flagged()[pair(products["original"], products["near"])]
    services.duplicate_flag_confirm(flag=flag, actor=staff, keep_product_id=products["near"].id)
    products["original"].refresh_from_db()
    assert products["original"].status == "hidden"
    with pytest.raises(ValueError):
        services.duplicate_flag_confirm(flag=flagged()[pair(products["exact"], products["near"])], actor=staff, keep_product_id=123456789)
    services.duplicate_flag_reopen(flag=flag, actor=staff)
    products["original"].refresh_from_db()
    flag.refresh_from_db()
    assert products["original"].status == "active" and flag.status == "open" and flag.hidden_product is None
    assert list(flag.actions.order_by("at", "id").values_list("action", flat=True)) == ["confirm", "reopen"]


def test_confirmed_duplicates_leave_the_similar_strip(embedded, staff):
    products, _ = embedded
    original = products["original"]
    similar = {m.product.id for m in product_similar(product=original).matches}
    assert products["near"].id in similar
    flag = flagged()[pair(original, products["near"])]
    services.duplicate_flag_confirm(flag=flag, actor=staff, keep_product_id=products["near"].id)  # original hidden
    services.duplicate_flag_reopen(flag=flag, actor=staff)
    flag = DuplicateFlag.objects.get(pk=flag.pk)
    services.duplicate_flag_confirm(flag=flag, actor=staff)  # the near copy (newer) is hidden
    assert selectors.confirmed_duplicate_ids(product_id=original.id) == {products["near"].id}
    assert products["near"].id not in {m.product.id for m in product_similar(product=original).matches}


def test_bulk_and_skip(embedded, staff):
    ids = list(DuplicateFlag.objects.values_list("pk", flat=True))
    services.duplicate_flag_skip(flag=DuplicateFlag.objects.get(pk=ids[0]), actor=staff)
    queue = list(selectors.duplicate_flag_list(reviewer=staff))
    assert queue[-1].pk == ids[0]  # a skipped flag comes back last
    done, not_open = services.duplicate_flags_bulk(flag_ids=ids, action="dismiss", actor=staff)
    assert sorted(done) == sorted(ids) and not_open == []
    done, not_open = services.duplicate_flags_bulk(flag_ids=ids, action="confirm", actor=staff)
    assert done == [] and sorted(not_open) == sorted(ids)
    assert selectors.duplicate_flag_counts() == {"open": 0, "confirmed": 0, "dismissed": 3}


def test_queue_selectors_use_a_bounded_number_of_queries(embedded, staff):
    with CaptureQueriesContext(connection) as ctx:
        flags = list(selectors.duplicate_flag_list(reviewer=staff))
        for flag in flags:
            (flag.product_a.merchant.name, flag.product_b.category.parent, flag.image_a.image.name, flag.image_b.image.name)
        selectors.duplicate_flag_counts()
    assert len(flags) == 3 and len(ctx.captured_queries) == 2


def test_filters(embedded):
    products, _ = embedded
    assert selectors.duplicate_flag_list(filters=selectors.FlagFilters(kind="exact")).count() == 1
    assert selectors.duplicate_flag_list(filters=selectors.FlagFilters(merchant="northwind")).count() == 2
    assert selectors.duplicate_flag_list(filters=selectors.FlagFilters(category="apparel-tshirts")).count() == 3
    assert selectors.duplicate_flag_list(filters=selectors.FlagFilters(category="nope")).count() == 0


def test_a_mirrored_cropped_copy_with_text_is_flagged_by_verification(embedded):
    from PIL import ImageDraw, ImageOps

    from tests.visualsearch.duplicates.conftest import add_product
    from tests.visualsearch.duplicates.photos import jpeg, photo

    products, _ = embedded
    copy = photo(print_seed=3)
    w, h = copy.size
    copy = ImageOps.mirror(copy.crop((int(w * 0.08), int(h * 0.06), w - int(w * 0.1), h - int(h * 0.07))))
    ImageDraw.Draw(copy).rectangle((20, 20, 200, 70), fill=(250, 200, 0))
    relisted, image = add_product(data=jpeg(copy, quality=55), title="Tee, best price", category=products["original"].category)
    images_embed(image_ids=[image.id])
    flag = flagged()[pair(products["original"], relisted)]
    assert flag.kind == "near" and flag.evidence["decided_by"] == "verification"
    verification = flag.evidence["verification"]
    assert verification["mirrored"] and "mirrored" in verification["edits"] and verification["inliers"] >= 40
    # the other design and the other colourway of the original stay unflagged
    assert pair(products["other_design"], relisted) not in flagged()
    assert pair(products["other_colour"], relisted) not in flagged()


@pytest.mark.parametrize("threads", [1, 3])
def test_verification_decodes_each_picture_once_when_a_query_is_also_a_candidate(catalogue, monkeypatch, threads):
    """Images of one series are often checked in one batch, each the other's candidate: each
    picture is decoded once, the query's mirror image made from it, and the verification is
    the one fresh features give, in the order asked, however many threads do the work."""
    from visualsearch.duplicates.verification import image_features, verify
    from visualsearch.reader import stored_image_open

    _, images = catalogue
    a, b = images["original"], images["near"]
    opened = []

    def counting_open(name):
        opened.append(name)
        return stored_image_open(name)

    monkeypatch.setattr(services, "stored_image_open", counting_open)
    monkeypatch.setattr(services, "VERIFY_THREADS", threads)
    rows = {a.id: [(0.9, b.id, 10, 0.5, "index")], b.id: [(0.9, a.id, 10, 0.5, "index")]}
    yielded = list(services._verify_candidates(rows))
    assert [(query, other) for query, other, *_ in yielded] == [(a.id, b.id), (b.id, a.id)]
    results = {(query, other): v for query, other, *_, v in yielded}
    assert sorted(opened) == sorted([a.image.name, b.image.name])
    fresh = {img.id: stored_image_open(img.image.name) for img in (a, b)}
    for query, other in ((a.id, b.id), (b.id, a.id)):
        expected = verify(image_features(fresh[query], mirrored=True), image_features(fresh[other]))
        assert results[(query, other)] == expected
    assert results[(b.id, a.id)].inliers >= 20
