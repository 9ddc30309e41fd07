"""Does "Recommended for you" follow each of a visitor's interests? Simulated sessions over
the catalogue in the database (the demo catalogue after ``make demo``), scored before and after.

* **before**: the normalised mean of the recent views' vectors, later views weighted more,
  one search: the method "Recommended for you" used up to commit 1756cc7, kept here as the
  baseline (:func:`recommended_mean_vector`).
* **after**: :func:`recommender.selectors.products_recommended` (interests kept apart by
  category, searched one by one, interleaved by recency, diversified).

A simulated session is a visitor who views 2 to 4 leaf categories in a row (articleType in
the demo catalogue: Flats, Tshirts, Messenger Bag ...), one or two products of each,
drawn with a seeded ``random.Random``: categories in proportion to their number of
products (a random walk through the shop lands in big categories more often), distinct
within a session, products uniformly within a category. Only categories with at least
``min_products`` embedded active products take part (viewing two must leave one to
recommend).

Per list (the top ``k``), averaged over the sessions:

* ``on_interest``: share of the list whose category is one of the viewed categories;
* ``coverage``: share of the viewed categories with at least one product in the list;
* ``all_covered``: share of sessions whose every viewed category is in the list;
* ``last_in_top3``: share of sessions whose last viewed category is among the first 3;
* ``*_parent``: the same one level up (Flats and Heels are both Shoes);
* ``near_identical_adjacent``: neighbours in the list whose photos are near-identical
  (cosine >= ``NEAR_IDENTICAL_SIMILARITY``), per list;
* ``empty``: lists with nothing in them; ``ms_median`` / ``ms_p95``: time per list.

Nothing here was tuned on these sessions: the recommender's constants were set before the
first run (docs/benchmarks.md says how).
"""

from __future__ import annotations

import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from recommender.selectors import (
    NEAR_IDENTICAL_SIMILARITY,
    RECENT_VIEWS_USED,
    products_recommended,
)
from shop.models import Category, Product
from visualsearch.models import ImageEmbedding
from visualsearch.selectors import (
    ProductMatch,
    active_model_name,
    product_search_by_vector,
    product_vectors,
)

MIN_CATEGORIES, MAX_CATEGORIES = 2, 4
MIN_VIEWS_PER_CATEGORY, MAX_VIEWS_PER_CATEGORY = 1, 2


def recommended_mean_vector(*, viewed_ids: Sequence[int], k: int) -> list[ProductMatch]:
    """The baseline: "Recommended for you" as it was up to commit 1756cc7 (one query, the
    recency-weighted mean of the last ``RECENT_VIEWS_USED`` views' vectors)."""
    recent = list(dict.fromkeys(viewed_ids))[-RECENT_VIEWS_USED:]
    vectors = product_vectors(product_ids=recent)
    present = [pid for pid in recent if pid in vectors]
    if not present:
        return []
    weights = np.linspace(1.0, 2.0, num=len(present), dtype=np.float32)
    query = np.average(np.stack([vectors[pid] for pid in present]), axis=0, weights=weights)
    norm = float(np.linalg.norm(query))
    if norm == 0.0:
        return []
    return product_search_by_vector(vector=query / norm, k=k, exclude_product_ids=set(viewed_ids))


METHODS: dict[str, Callable[..., list]] = {
    "before": recommended_mean_vector,
    "after": products_recommended,
}


@dataclass(frozen=True)
class Session:
    categories: tuple[int, ...]  # leaf category ids, in viewing order
    views: tuple[int, ...]  # product ids, oldest first


@dataclass
class CatalogueView:
    by_category: dict[int, list[int]]  # embedded active products per leaf category
    category_of: dict[int, int]  # product -> category
    parent_of: dict[int, int]  # category -> parent (itself for a root)
    names: dict[int, str]


def catalogue_read(*, model_name: str | None = None) -> CatalogueView:
    """Active products with an embedding of the model, by category (three queries)."""
    embedded = set(
        ImageEmbedding.objects.filter(model_name=model_name or active_model_name()).values_list("product_id", flat=True).distinct()
    )
    by_category: dict[int, list[int]] = defaultdict(list)
    category_of: dict[int, int] = {}
    for product_id, category_id in Product.objects.filter(status=Product.Status.ACTIVE).order_by("id").values_list("id", "category_id"):
        if product_id in embedded:
            by_category[category_id].append(product_id)
            category_of[product_id] = category_id
    parent_of, names = {}, {}
    for category_id, parent_id, name in Category.objects.values_list("id", "parent_id", "name"):
        parent_of[category_id] = parent_id or category_id
        names[category_id] = name
    return CatalogueView(by_category=dict(by_category), category_of=category_of, parent_of=parent_of, names=names)


def sessions_simulate(catalogue: CatalogueView, *, n: int, seed: int, min_products: int = 3) -> list[Session]:
    """``n`` visitors, each viewing 2-4 distinct categories in a row, 1-2 products of each."""
    eligible = sorted(c for c, products in catalogue.by_category.items() if len(products) >= min_products)
    if len(eligible) < MIN_CATEGORIES:
        raise ValueError(
            f"{len(eligible)} categories hold {min_products} or more embedded products; sessions need {MIN_CATEGORIES}."
        )
    weights = [len(catalogue.by_category[c]) for c in eligible]
    rng = random.Random(seed)
    sessions = []
    for _ in range(n):
        wanted = rng.randint(MIN_CATEGORIES, min(MAX_CATEGORIES, len(eligible)))
        chosen: list[int] = []
        while len(chosen) < wanted:
            category = rng.choices(eligible, weights=weights)[0]
            if category not in chosen:
                chosen.append(category)
        views: list[int] = []
        for category in chosen:
            views += rng.sample(catalogue.by_category[category], rng.randint(MIN_VIEWS_PER_CATEGORY, MAX_VIEWS_PER_CATEGORY))
        sessions.append(Session(categories=tuple(chosen), views=tuple(views)))
    return sessions


@dataclass
class ListScores:
    on_interest: list[float] = field(default_factory=list)
    coverage: list[float] = field(default_factory=list)
    all_covered: list[float] = field(default_factory=list)
    last_in_top3: list[float] = field(default_factory=list)
    on_interest_parent: list[float] = field(default_factory=list)
    coverage_parent: list[float] = field(default_factory=list)
    near_identical_adjacent: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    coverage_by_size: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))

    def summary(self) -> dict:
        mean = lambda values: round(float(np.mean(values)), 4) if values else None  # noqa: E731
        ms = sorted(1000 * s for s in self.seconds)
        return {
            "on_interest": mean(self.on_interest),
            "coverage": mean(self.coverage),
            "all_covered": mean(self.all_covered),
            "last_in_top3": mean(self.last_in_top3),
            "on_interest_parent": mean(self.on_interest_parent),
            "coverage_parent": mean(self.coverage_parent),
            "near_identical_adjacent": mean(self.near_identical_adjacent),
            "mean_length": mean(self.lengths),
            "empty": sum(1 for n in self.lengths if n == 0),
            "coverage_by_categories_viewed": {str(size): mean(values) for size, values in sorted(self.coverage_by_size.items())},
            "ms_median": round(statistics.median(ms), 2) if ms else None,
            "ms_p95": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 2) if ms else None,
        }


def _near_identical_adjacent(product_ids: list[int]) -> int:
    vectors = product_vectors(product_ids=product_ids)
    units = [vectors[pid] / np.linalg.norm(vectors[pid]) if pid in vectors else None for pid in product_ids]
    return sum(
        1
        for a, b in zip(units, units[1:])
        if a is not None and b is not None and float(a @ b) >= NEAR_IDENTICAL_SIMILARITY
    )


def sessions_score(
    sessions: Sequence[Session], catalogue: CatalogueView, *, k: int, on_progress: Callable[[int], None] | None = None
) -> dict[str, dict]:
    """Each method's list for each session, scored; methods alternate per session so that the
    machine's load falls on both alike."""
    scores = {name: ListScores() for name in METHODS}
    for session in sessions:
        viewed = set(session.categories)
        viewed_parents = {catalogue.parent_of[c] for c in viewed}
        for name, method in METHODS.items():
            started = time.perf_counter()
            matches = method(viewed_ids=list(session.views), k=k)
            scores[name].seconds.append(time.perf_counter() - started)
            ids = [m.product.id for m in matches]
            categories = [m.product.category_id for m in matches]
            parents = [catalogue.parent_of.get(c, c) for c in categories]
            s = scores[name]
            s.lengths.append(len(ids))
            s.on_interest.append(sum(c in viewed for c in categories) / len(ids) if ids else 0.0)
            s.on_interest_parent.append(sum(p in viewed_parents for p in parents) / len(ids) if ids else 0.0)
            covered = len(viewed & set(categories)) / len(viewed)
            s.coverage.append(covered)
            s.coverage_by_size[len(viewed)].append(covered)
            s.all_covered.append(1.0 if covered == 1.0 else 0.0)
            s.coverage_parent.append(len(viewed_parents & set(parents)) / len(viewed_parents))
            s.last_in_top3.append(1.0 if session.categories[-1] in categories[:3] else 0.0)
            s.near_identical_adjacent.append(_near_identical_adjacent(ids))
        if on_progress:
            on_progress(1)
    return {name: s.summary() for name, s in scores.items()}


def session_examples(sessions: Sequence[Session], catalogue: CatalogueView, *, k: int, count: int = 3) -> list[dict]:
    """A few sessions with both lists' categories, for the report."""
    out = []
    for session in sessions[:count]:
        row = {"viewed": [catalogue.names[c] for c in session.categories]}
        for name, method in METHODS.items():
            row[name] = [catalogue.names.get(m.product.category_id, "?") for m in method(viewed_ids=list(session.views), k=k)]
        out.append(row)
    return out
