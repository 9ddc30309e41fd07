"""Writes for duplicate listings: fingerprints, detection (flags), and the review actions."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from shop.models import Product, ProductImage
from shop.services import product_set_status
from visualsearch import index
from visualsearch.duplicates.detection import (
    COLOUR_HEX_CHARS,
    DEFAULT_THRESHOLDS,
    HASH_BITS,
    Fingerprint,
    Thresholds,
    colour_distance,
    fingerprint,
    hash_distance,
    near_copy_score,
)
from visualsearch.duplicates.verification import (
    DEFAULT_VERIFY_THRESHOLDS,
    ImageFeatures,
    VerifyThresholds,
    image_features,
    verified_score,
    verify,
    with_mirror,
)
from visualsearch.duplicates.models import DuplicateFlag, DuplicateFlagAction, ImageFingerprint
from visualsearch.models import ImageEmbedding
from visualsearch.reader import DECODE_ERRORS, stored_image_open
from visualsearch.selectors import active_model_name
from visualsearch.services import embeddings_canonical_elect

logger = logging.getLogger(__name__)

# Nearest canonical images looked at per new image (HNSW). Copies of one photo are each
# other's nearest neighbours by far; 8 leaves room for products with several images.
NEIGHBOURS = 8
# Images within the flaggable hash distance of a new image that are looked at, closest
# first (a guard against one photo re-used by thousands of listings).
BAND_CANDIDATES = 50
# Candidates per new image given to the local-feature verification (verification.py), by
# cosine, highest first: a verification costs ~15-30 ms on one CPU core (two decodes, ORB on
# 256-px pictures, RANSAC; see README.md), so this bounds a new image's cost. The original
# of a re-listed copy was its first neighbour in 39 of 40 outside checks.
VERIFY_CANDIDATES_PER_IMAGE = 4
# A batch's pictures are decoded and described (ORB), then its pairs verified, this many at
# a time: OpenCV and Pillow release the GIL for most of it. A full re-check of the demo
# catalogue (3,000 images, 25,095 candidate pairs, the same 108 flags with the same evidence
# every time) took 134.9 / 158.4 s on one thread, 120.3 / 114.7 s with the features on two,
# 95.1 / 108.4 s with the verifications on two as well (2 cores, 2026-12-06).
VERIFY_THREADS = max(1, min(4, os.cpu_count() or 1))
DETECTOR_VERSION = 2


class FlagNotOpen(Exception):
    """The flag was already confirmed or dismissed (by someone else, or in another tab)."""

    def __init__(self, flag: DuplicateFlag) -> None:
        super().__init__(f"Flag {flag.pk} is {flag.status}, not open.")
        self.flag = flag


# Fingerprints ---------------------------------------------------------------------------


def fingerprints_store(*, fingerprints: Mapping[int, Fingerprint]) -> None:
    """Upsert the fingerprints of images {image id: Fingerprint}, recording which bytes they hash."""
    if not fingerprints:
        return
    shas = dict(ProductImage.objects.filter(id__in=list(fingerprints)).values_list("id", "sha256"))
    rows = [
        ImageFingerprint(
            image_id=image_id,
            sha256=shas[image_id],
            phash=fp.phash,
            phash_trim=fp.phash_trim,
            colour=fp.colour,
            bands=fp.bands(),
            checked_at=None,
        )
        for image_id, fp in fingerprints.items()
        if image_id in shas
    ]
    ImageFingerprint.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["image"],
        update_fields=["sha256", "phash", "phash_trim", "colour", "bands", "checked_at", "updated_at"],
    )


def fingerprints_ensure(*, image_ids: Iterable[int]) -> dict[int, Fingerprint]:
    """The fingerprints of ``image_ids``, computing (decoding the file) those missing or stale.

    Unreadable files are logged and left out.
    """
    ids = set(image_ids)
    if not ids:
        return {}
    images = {
        row["id"]: row
        for row in ProductImage.objects.filter(id__in=ids).values(
            "id", "sha256", "image", "fingerprint__sha256", "fingerprint__phash", "fingerprint__phash_trim", "fingerprint__colour"
        )
    }
    out: dict[int, Fingerprint] = {}
    missing: dict[int, Fingerprint] = {}
    for image_id, row in images.items():
        if row["fingerprint__sha256"] == row["sha256"] and len(row["fingerprint__colour"] or "") == 2 * COLOUR_HEX_CHARS:
            out[image_id] = Fingerprint(
                phash=row["fingerprint__phash"], phash_trim=row["fingerprint__phash_trim"], colour=row["fingerprint__colour"]
            )
            continue
        try:
            missing[image_id] = fingerprint(stored_image_open(row["image"]))
        except DECODE_ERRORS as exc:
            logger.warning("Cannot fingerprint product image %s: %s", image_id, exc)
    fingerprints_store(fingerprints=missing)
    out.update(missing)
    return out


# Detection ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """The evidence that two products are one: their closest pair of images."""

    image_a: int
    image_b: int
    kind: str
    score: float
    cosine: float
    hash_distance: int
    channel: str  # how the pair was found: "sha256", "hnsw" or "hash-bands"
    colour_distance: float = 0.0
    verification: dict | None = None  # verification.Verification.as_evidence(), when it ran
    decided_by: str = "hash"  # "sha256", "hash" (hash + cosine score) or "verification"


@dataclass
class DetectReport:
    images: int = 0
    candidates: int = 0
    created: dict[str, int] = field(default_factory=lambda: {"exact": 0, "near": 0})
    updated: int = 0

    def add(self, other: DetectReport) -> None:
        self.images += other.images
        self.candidates += other.candidates
        for kind, count in other.created.items():
            self.created[kind] = self.created.get(kind, 0) + count
        self.updated += other.updated


def _query_rows(image_ids: Sequence[int], model_name: str) -> list[tuple[int, int, str, int]]:
    """(image id, product id, sha256, dim) of the given images' embeddings, active products only."""
    return list(
        ImageEmbedding.objects.filter(
            image_id__in=list(image_ids), model_name=model_name, product__status=Product.Status.ACTIVE
        ).values_list("image_id", "product_id", "image__sha256", "dim")
    )


def _hnsw_neighbours(image_ids: Sequence[int], *, model_name: str, dim: int, k: int) -> list[tuple[int, int, float]]:
    """(query image, neighbour image, cosine) for the ``k`` nearest canonical images of other products.

    One statement for the whole batch: a LATERAL index scan per query image.
    """
    table = ImageEmbedding._meta.db_table
    indexed, query = index.vector_cast_sql(dim, "e.vector"), index.vector_cast_sql(dim, "q.vector")
    sql = (
        f"SELECT q.image_id, n.image_id, 1 - n.distance FROM {table} q "
        f"CROSS JOIN LATERAL ("
        f"  SELECT e.image_id, {indexed} <=> {query} AS distance FROM {table} e "
        f"  WHERE e.model_name = %s AND e.dim = %s AND e.is_canonical AND e.product_id <> q.product_id "
        f"  ORDER BY distance LIMIT %s"
        f") n "
        f"WHERE q.model_name = %s AND q.dim = %s AND q.image_id = ANY(%s)"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        index.execute_search(cursor, sql, [model_name, dim, k, model_name, dim, list(image_ids)])
        return [(q, n, float(cosine)) for q, n, cosine in cursor.fetchall()]


def _band_neighbours(
    image_ids: Sequence[int], *, model_name: str, dim: int, max_distance: int
) -> list[tuple[int, int, float]]:
    """(query image, candidate image, cosine) for images of other products whose hash is
    within ``max_distance`` bits, found through shared hash bands (GIN index).

    Finds copies whatever their cosine (e.g. a 60x80 thumbnail the CNN barely recognises).
    The Hamming distance is computed in SQL (bit strings), so images that merely share a
    common band (plain white backgrounds do) are dropped before they reach Python.
    """
    table = ImageEmbedding._meta.db_table
    prints = ImageFingerprint._meta.db_table

    def bits(alias: str, column: str) -> str:
        return f"('x' || {alias}.{column})::bit({HASH_BITS})"

    distance = (
        f"LEAST(bit_count({bits('cf', 'phash')} # {bits('qf', 'phash')}), "
        f"bit_count({bits('cf', 'phash_trim')} # {bits('qf', 'phash_trim')}))"
    )
    sql = (
        f"SELECT q.image_id, c.image_id, 1 - ({index.vector_cast_sql(dim, 'c.vector')} <=> {index.vector_cast_sql(dim, 'q.vector')}) "
        f"FROM {table} q JOIN {prints} qf ON qf.image_id = q.image_id "
        f"CROSS JOIN LATERAL ("
        f"  SELECT cf.image_id FROM {prints} cf WHERE cf.bands && qf.bands AND cf.image_id <> q.image_id "
        f"  AND {distance} <= %s ORDER BY {distance} LIMIT %s"
        f") cand "
        f"JOIN {table} c ON c.image_id = cand.image_id AND c.model_name = q.model_name AND c.dim = q.dim "
        f"WHERE q.model_name = %s AND q.dim = %s AND q.image_id = ANY(%s) AND c.product_id <> q.product_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [max_distance, BAND_CANDIDATES, model_name, dim, list(image_ids)])
        return [(q, c, float(cosine)) for q, c, cosine in cursor.fetchall()]


def _best_matches(
    *,
    query: Sequence[tuple[int, int, str, int]],
    model_name: str,
    thresholds: Thresholds,
    verify_thresholds: VerifyThresholds = DEFAULT_VERIFY_THRESHOLDS,
) -> tuple[dict[tuple[int, int], Match], int]:
    """The best match per unordered product pair among the candidates of the query images."""
    query_ids = [row[0] for row in query]
    product_of = {row[0]: row[1] for row in query}
    sha_of = {row[0]: row[2] for row in query}
    by_dim: dict[int, list[int]] = {}
    for image_id, _, _, dim in query:
        by_dim.setdefault(dim, []).append(image_id)

    # (query image, other image) -> (cosine, channel)
    candidates: dict[tuple[int, int], tuple[float, str]] = {}
    neighbours: list[tuple[int, int, float, str]] = []
    fingerprints_ensure(image_ids=query_ids)  # the band channel needs the queries' own
    for dim, ids in by_dim.items():
        neighbours += [(*row, "hnsw") for row in _hnsw_neighbours(ids, model_name=model_name, dim=dim, k=NEIGHBOURS)]
        neighbours += [
            (*row, "hash-bands")
            for row in _band_neighbours(ids, model_name=model_name, dim=dim, max_distance=thresholds.max_hash_distance())
        ]

    # An HNSW hit is a canonical row: its exact copies (other products, same bytes) are
    # candidates too, with the same cosine. Exact copies of the query image are found the same way.
    hit_ids = {other for _, other, _, _ in neighbours}
    hit_sha = dict(ProductImage.objects.filter(id__in=hit_ids).values_list("id", "sha256"))
    shas = set(hit_sha.values()) | set(sha_of.values())
    members: dict[str, list[tuple[int, int]]] = {}
    for image_id, product_id, sha in ProductImage.objects.filter(
        sha256__in=shas, product__status=Product.Status.ACTIVE
    ).values_list("id", "product_id", "sha256"):
        members.setdefault(sha, []).append((image_id, product_id))

    exact: dict[tuple[int, int], None] = {}
    for image_id in query_ids:
        for other, other_product in members.get(sha_of[image_id], []):
            if other_product != product_of[image_id]:
                exact[(image_id, other)] = None
    for image_id, other, cosine, channel in neighbours:
        for copy, copy_product in members.get(hit_sha.get(other, ""), [(other, None)]):
            if copy_product == product_of[image_id] or (image_id, copy) in exact:
                continue
            key = (image_id, copy)
            if key not in candidates or candidates[key][0] < cosine:
                candidates[key] = (cosine, channel)

    product_by_image = dict(  # hidden products are left out: they are never flagged
        ProductImage.objects.filter(
            id__in={other for _, other in [*candidates, *exact]}, product__status=Product.Status.ACTIVE
        ).values_list("id", "product_id")
    )
    prints = fingerprints_ensure(image_ids={i for pair in candidates for i in pair})
    best: dict[tuple[int, int], Match] = {}

    def offer(
        image_id: int,
        other: int,
        match_kind: str,
        score: float,
        cosine: float,
        distance: int,
        channel: str,
        colour: float = 0.0,
        verification: dict | None = None,
        decided_by: str = "hash",
    ) -> None:
        pa, pb = product_of[image_id], product_by_image.get(other)
        if pb is None or pa == pb:
            return
        if pa > pb:
            pa, pb, image_id, other = pb, pa, other, image_id
        match = Match(
            image_a=image_id,
            image_b=other,
            kind=match_kind,
            score=score,
            cosine=cosine,
            hash_distance=distance,
            channel=channel,
            colour_distance=colour,
            verification=verification,
            decided_by=decided_by,
        )
        current = best.get((pa, pb))
        if current is None or (match.kind == "exact", match.score) > (current.kind == "exact", current.score):
            best[(pa, pb)] = match

    for image_id, other in exact:
        offer(image_id, other, DuplicateFlag.Kind.EXACT, 1.0, 1.0, 0, "sha256", decided_by="sha256")
    to_verify: dict[int, list[tuple[float, int, int, float, str]]] = {}
    for (image_id, other), (cosine, channel) in candidates.items():
        if image_id not in prints or other not in prints:
            continue
        distance = hash_distance(prints[image_id], prints[other])
        colour = colour_distance(prints[image_id], prints[other])
        if thresholds.is_near_copy(cosine=cosine, hash_distance=distance, colour_distance=colour):
            score = near_copy_score(cosine=cosine, hash_distance=distance)
            offer(image_id, other, DuplicateFlag.Kind.NEAR, score, round(cosine, 4), distance, channel, colour)
        elif cosine >= verify_thresholds.min_cosine:
            to_verify.setdefault(image_id, []).append((cosine, other, distance, colour, channel))
    # A pair already flagged (whatever its status) or already matched here needs no
    # verification: re-scans then cost nothing new.
    involved = {product_of[i] for i in to_verify} | {product_by_image.get(row[1]) for rows in to_verify.values() for row in rows}
    flagged = _flagged_pairs(involved)
    for image_id, rows in list(to_verify.items()):
        keep = []
        for row in rows:
            pb = product_by_image.get(row[1])
            pair = tuple(sorted((product_of[image_id], pb))) if pb is not None else None
            if pair is not None and pair not in flagged and pair not in best:
                keep.append(row)
        if keep:
            to_verify[image_id] = keep
        else:
            del to_verify[image_id]
    for image_id, other, cosine, distance, colour, channel, result in _verify_candidates(
        to_verify, least_inliers=verify_thresholds.least_inliers
    ):
        if verify_thresholds.passes(result, cosine=cosine):
            offer(
                image_id,
                other,
                DuplicateFlag.Kind.NEAR,
                max(verified_score(result), near_copy_score(cosine=cosine, hash_distance=distance)),
                round(cosine, 4),
                distance,
                channel,
                colour,
                verification={
                    **result.as_evidence(),
                    # By image id: the flag's a/b order is the products', not the comparison's.
                    "regions": {str(image_id): list(result.region_a), str(other): list(result.region_b)},
                },
                decided_by="verification",
            )
    return best, len(candidates) + len(exact)


def _flagged_pairs(product_ids: set) -> set[tuple[int, int]]:
    ids = {i for i in product_ids if i is not None}
    if not ids:
        return set()
    return set(DuplicateFlag.objects.filter(product_a_id__in=ids, product_b_id__in=ids).values_list("product_a_id", "product_b_id"))


def _verify_candidates(to_verify: Mapping[int, list[tuple[float, int, int, float, str]]], *, least_inliers: int = 0):
    """Local-feature verification of the best ``VERIFY_CANDIDATES_PER_IMAGE`` candidates of
    each query image (by cosine): yields (image, other, cosine, hash distance, colour
    distance, channel, Verification), in order. Each picture is decoded once; the query images
    get their mirror image's keypoints too; ``VERIFY_THREADS`` pictures or pairs at a time.
    Unreadable files are logged and skipped. A pair with fewer than ``least_inliers`` inliers
    is not measured further (``verification.verify``): on the demo catalogue's real candidates
    401 of the 1,148 verifications that find a transform have fewer than 15."""
    chosen = {image_id: sorted(rows, reverse=True)[:VERIFY_CANDIDATES_PER_IMAGE] for image_id, rows in to_verify.items()}
    needed = set(chosen) | {row[1] for rows in chosen.values() for row in rows}
    names = dict(ProductImage.objects.filter(id__in=needed).values_list("id", "image"))

    def load(image_id: int) -> tuple[int, ImageFeatures | None]:
        # A query image is often another's candidate in the same batch (one series, listed
        # together): its picture is decoded once, and its mirror image made from that.
        try:
            features = image_features(stored_image_open(names[image_id]))
        except (*DECODE_ERRORS, KeyError) as exc:
            logger.warning("Cannot verify product image %s: %s", image_id, exc)
            return image_id, None
        return image_id, with_mirror(features) if image_id in chosen else features

    with ThreadPoolExecutor(max_workers=VERIFY_THREADS, thread_name_prefix="duplicate-verify") as pool:
        loaded = dict(pool.map(load, sorted(needed)))
        jobs = [
            (image_id, other, cosine, distance, colour, channel)
            for image_id, rows in chosen.items() if loaded[image_id] is not None
            for cosine, other, distance, colour, channel in rows if loaded[other] is not None
        ]
        # A candidate is compared as it is: verify() mirrors the query's side only.
        results = pool.map(
            lambda job: verify(loaded[job[0]], ImageFeatures(plain=loaded[job[1]].plain), least_inliers=least_inliers), jobs
        )
        for job, result in zip(jobs, results, strict=True):
            yield (*job, result)


def _flags_upsert(matches: Mapping[tuple[int, int], Match], *, model_name: str, thresholds: Thresholds) -> tuple[dict[str, int], int]:
    """Create a flag per new pair; improve the evidence of open flags. Never touches resolved ones."""
    created = {"exact": 0, "near": 0}
    if not matches:
        return created, 0
    existing = {
        (flag.product_a_id, flag.product_b_id): flag
        for flag in DuplicateFlag.objects.filter(
            product_a_id__in={a for a, _ in matches}, product_b_id__in={b for _, b in matches}
        )
    }

    def fields(match: Match) -> dict:
        return {
            "kind": match.kind,
            "score": match.score,
            "image_a_id": match.image_a,
            "image_b_id": match.image_b,
            "cosine": match.cosine,
            "hash_distance": match.hash_distance,
            "evidence": {
                "found_by": match.channel,
                "decided_by": match.decided_by,
                **({"verification": match.verification} if match.verification else {}),
                "colour_distance": match.colour_distance,
                "identical_bytes": match.kind == DuplicateFlag.Kind.EXACT,
                "model": model_name,
                "threshold": thresholds.near_copy,
                "detector": DETECTOR_VERSION,
            },
        }

    new = []
    updated = 0
    for (pa, pb), match in matches.items():
        flag = existing.get((pa, pb))
        if flag is None:
            new.append(DuplicateFlag(product_a_id=pa, product_b_id=pb, **fields(match)))
            created[match.kind] += 1
        elif flag.status == DuplicateFlag.Status.OPEN and (
            (match.kind == DuplicateFlag.Kind.EXACT and flag.kind != match.kind) or match.score > flag.score + 1e-6
        ):
            for name, value in fields(match).items():
                setattr(flag, name, value)
            flag.save(update_fields=[*fields(match), "updated_at"])
            updated += 1
    # A concurrent worker may have flagged the same pair a moment ago: the unique pair wins.
    DuplicateFlag.objects.bulk_create(new, ignore_conflicts=True)
    return created, updated


def duplicates_detect(
    *,
    image_ids: Iterable[int],
    model_name: str | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> DetectReport:
    """Compare the given (embedded) images with the other products' images and flag duplicate pairs.

    Exact copies: another product has an image with the same sha256. Near copies: among the
    image's nearest neighbours in the HNSW index and the images sharing a perceptual-hash
    band, those whose combined score (``detection.near_copy_score``) passes the threshold.
    Only active products are compared. Idempotent: a pair is flagged once, whatever its
    status; re-running improves the evidence of an open flag at most.
    """
    model_name = model_name or active_model_name()
    ids = sorted(set(image_ids))
    report = DetectReport(images=len(ids))
    query = _query_rows(ids, model_name)
    if query:
        matches, report.candidates = _best_matches(query=query, model_name=model_name, thresholds=thresholds)
        with transaction.atomic():
            report.created, report.updated = _flags_upsert(matches, model_name=model_name, thresholds=thresholds)
    ImageFingerprint.objects.filter(image_id__in=ids).update(checked_at=timezone.now())
    return report


# Review actions -------------------------------------------------------------------------


def _locked_open(flag: DuplicateFlag) -> DuplicateFlag:
    locked = DuplicateFlag.objects.select_for_update().get(pk=flag.pk)
    if locked.status != DuplicateFlag.Status.OPEN:
        raise FlagNotOpen(locked)
    return locked


def _record(flag: DuplicateFlag, *, action: str, actor, details: dict) -> DuplicateFlagAction:
    return DuplicateFlagAction.objects.create(flag=flag, action=action, actor=actor, details=details)


@transaction.atomic
def duplicate_flag_confirm(*, flag: DuplicateFlag, actor, keep_product_id: int | None = None, via: str = "web") -> DuplicateFlag:
    """The two listings are one item: hide one of them (by default the newer) and close the flag.

    ``keep_product_id`` picks the listing that stays; it must be one of the pair.
    Raises FlagNotOpen if someone already resolved the flag, ValueError for a bad keep.
    """
    flag = _locked_open(flag)
    a, b = Product.objects.filter(id__in=[flag.product_a_id, flag.product_b_id]).order_by("created_at", "id")
    if keep_product_id is None:
        kept, hidden = a, b  # the older listing stays
    elif keep_product_id in (a.id, b.id):
        kept, hidden = (a, b) if keep_product_id == a.id else (b, a)
    else:
        raise ValueError(f"Product {keep_product_id} is not one of the flagged pair.")
    product_set_status(product=hidden, status=Product.Status.HIDDEN)
    flag.status = DuplicateFlag.Status.CONFIRMED
    flag.kept_product, flag.hidden_product = kept, hidden
    flag.resolved_by, flag.resolved_at = actor, timezone.now()
    flag.save(update_fields=["status", "kept_product", "hidden_product", "resolved_by", "resolved_at", "updated_at"])
    _record(flag, action=DuplicateFlagAction.Action.CONFIRM, actor=actor, details={"kept": kept.id, "hidden": hidden.id, "via": via})
    return flag


@transaction.atomic
def duplicate_flag_dismiss(*, flag: DuplicateFlag, actor, via: str = "web") -> DuplicateFlag:
    """Not a duplicate: close the flag. The pair is never flagged again."""
    flag = _locked_open(flag)
    flag.status = DuplicateFlag.Status.DISMISSED
    flag.resolved_by, flag.resolved_at = actor, timezone.now()
    flag.save(update_fields=["status", "resolved_by", "resolved_at", "updated_at"])
    _record(flag, action=DuplicateFlagAction.Action.DISMISS, actor=actor, details={"via": via})
    return flag


@transaction.atomic
def duplicate_flag_skip(*, flag: DuplicateFlag, actor, via: str = "web") -> DuplicateFlag:
    """Leave an open flag for later (it moves behind the others in this reviewer's queue)."""
    flag = _locked_open(flag)
    _record(flag, action=DuplicateFlagAction.Action.SKIP, actor=actor, details={"via": via})
    return flag


@transaction.atomic
def duplicate_flag_reopen(*, flag: DuplicateFlag, actor, via: str = "web") -> DuplicateFlag:
    """Undo a confirm or dismiss. A listing hidden by the confirm is shown again, unless
    another confirmed flag hid it too."""
    flag = DuplicateFlag.objects.select_for_update().get(pk=flag.pk)
    if flag.status == DuplicateFlag.Status.OPEN:
        return flag
    details: dict = {"via": via, "was": flag.status}
    hidden = flag.hidden_product
    if flag.status == DuplicateFlag.Status.CONFIRMED and hidden is not None:
        still_hidden_by_other = (
            DuplicateFlag.objects.filter(status=DuplicateFlag.Status.CONFIRMED, hidden_product=hidden).exclude(pk=flag.pk).exists()
        )
        if not still_hidden_by_other and hidden.status == Product.Status.HIDDEN:
            product_set_status(product=hidden, status=Product.Status.ACTIVE)
            details["shown_again"] = hidden.id
    flag.status = DuplicateFlag.Status.OPEN
    flag.kept_product = flag.hidden_product = flag.resolved_by = flag.resolved_at = None
    flag.save(update_fields=["status", "kept_product", "hidden_product", "resolved_by", "resolved_at", "updated_at"])
    _record(flag, action=DuplicateFlagAction.Action.REOPEN, actor=actor, details=details)
    return flag


BULK_ACTIONS = ("confirm", "dismiss")


def duplicate_flags_bulk(*, flag_ids: Sequence[int], action: str, actor, via: str = "web") -> tuple[list[int], list[int]]:
    """Confirm (hiding the newer listing) or dismiss several flags; returns (done ids, not-open ids)."""
    if action not in BULK_ACTIONS:
        raise ValueError(f"Unknown bulk action {action!r}.")
    done, not_open = [], []
    for flag in DuplicateFlag.objects.filter(pk__in=list(flag_ids)).order_by("pk"):
        try:
            if action == "confirm":
                duplicate_flag_confirm(flag=flag, actor=actor, via=via)
            else:
                duplicate_flag_dismiss(flag=flag, actor=actor, via=via)
            done.append(flag.pk)
        except FlagNotOpen:
            not_open.append(flag.pk)
    return done, not_open


# Whole-catalogue scan --------------------------------------------------------------------


@dataclass
class ScanReport(DetectReport):
    seconds: float = 0.0
    canonical_changes: int = 0


def duplicates_scan_image_ids(*, model_name: str, only_unchecked: bool = False) -> list[int]:
    """Embedded images of active products, in id order; ``only_unchecked``: those never
    compared with the catalogue (or whose bytes changed since)."""
    queryset = ImageEmbedding.objects.filter(model_name=model_name, product__status=Product.Status.ACTIVE)
    if only_unchecked:
        checked = ImageFingerprint.objects.filter(
            image_id=OuterRef("image_id"), checked_at__isnull=False, sha256=OuterRef("image__sha256")
        )
        queryset = queryset.exclude(Exists(checked))
    return list(queryset.order_by("image_id").values_list("image_id", flat=True))


def duplicates_scan(
    *,
    image_ids: Sequence[int],
    model_name: str | None = None,
    batch_size: int = 64,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    on_progress=None,
) -> ScanReport:
    """Check ``image_ids`` for duplicates in batches, through the HNSW index (no all-pairs).

    First repairs what older code or deleted rows may have left: rows without sha256 or a
    group without a canonical row, and builds (or upgrades) the HNSW index. Idempotent.
    """
    started = time.perf_counter()
    model_name = model_name or active_model_name()
    report = ScanReport()
    report.canonical_changes = embeddings_canonical_elect(model_name=model_name)
    for dim in ImageEmbedding.objects.filter(model_name=model_name).values_list("dim", flat=True).distinct():
        index.embedding_index_ensure(model_name=model_name, dim=dim)
    index.tables_analyze()  # a scan right after a bulk load must not be planned on empty statistics
    ids = list(image_ids)
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        report.add(duplicates_detect(image_ids=batch, model_name=model_name, thresholds=thresholds))
        if on_progress:
            on_progress(len(batch))
    report.seconds = time.perf_counter() - started
    return report
