"""How good is "Complete the look" on the catalogue in the database (after ``compute_looks``)?

For every active embedded product, the look its page shows (``product_complete_look`` with
the similar strip's neighbours, as the page calls it):

* **coverage**: share of products with a look of their own, and with any look (own or
  borrowed), overall and per family of the catalogue (Topwear, Shoes, ...);
* **complementary**: share of the shown suggestions in another family than the product's
  (a top's look should be bottoms, shoes or bags, not other tops), and for each family of
  products, which families its suggestions come from;
* **the garment's kind**: for each kind of region (bottom, top, ...), which families its
  suggestions come from: a "bottom" region of a T-shirt photo should give bottomwear;
* **gender**: share of suggestions of a gender that suits the product's;
* **cost**: the read's latency (own and borrowed looks), and the compute's per product on a
  sample (pose, embedding of the regions, their searches).

Nothing here is tuned on: the thresholds of ``recommender.outfits`` were set on a sample of
the demo catalogue's photos (docs/benchmarks.md, "Complete the look", says which), and this reads all of it.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recommender import outfits
from recommender.models import ProductLook
from recommender.selectors import product_complete_look, product_similar
from recommender.services import product_looks_refresh
from shop.models import Category, Product
from shop.selectors import category_nodes, product_get_by_ids
from visualsearch.models import ImageEmbedding
from visualsearch.selectors import active_model_name


def _percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile (the sample at round(q * (n - 1)) in sorted order), None without samples."""
    return float(np.percentile(values, q * 100, method="nearest")) if values else None


@dataclass
class ProductOutcome:
    product_id: int
    family: str
    own: bool
    shown: bool
    source_id: int | None
    suggestions: list[tuple[str, str, bool]]  # (region kind, suggestion family, gender suits)
    read_ms: float


def embedded_product_ids(*, model_name: str) -> list[int]:
    embedded = set(ImageEmbedding.objects.filter(model_name=model_name).values_list("product_id", flat=True).distinct())
    active = Product.objects.filter(status=Product.Status.ACTIVE).order_by("id").values_list("id", flat=True)
    return [pid for pid in active if pid in embedded]


def looks_read(*, product_ids: list[int], on_progress: Callable[[int], None] | None = None) -> list[ProductOutcome]:
    """What each product's page shows, read as the page reads it."""
    nodes: dict[int, Category] = category_nodes()
    own_ids = set(ProductLook.objects.filter(product_id__in=product_ids, has_look=True, model_name=active_model_name())
                  .values_list("product_id", flat=True))
    outcomes = []
    for start in range(0, len(product_ids), 200):
        for product in product_get_by_ids(ids=product_ids[start : start + 200]):
            similar = product_similar(product=product)
            started = time.perf_counter()
            look = product_complete_look(product=product, neighbour_ids=[m.product.id for m in similar.matches])
            read_ms = 1000 * (time.perf_counter() - started)
            genders = outfits.genders_suiting(product.gender)
            suggestions = [
                (group.kind, nodes[outfits.category_family_id(m.product.category_id, nodes)].name,
                 genders is None or m.product.gender in genders)
                for group in look.groups for m in group.matches
            ]
            outcomes.append(ProductOutcome(
                product_id=product.id, family=nodes[outfits.category_family_id(product.category_id, nodes)].name,
                own=product.id in own_ids, shown=bool(look), source_id=look.source.id if look.borrowed else None,
                suggestions=suggestions, read_ms=read_ms,
            ))
            if on_progress:
                on_progress(1)
    return outcomes


def looks_score(outcomes: list[ProductOutcome]) -> dict:
    n = len(outcomes)
    by_family: dict[str, list[ProductOutcome]] = defaultdict(list)
    for outcome in outcomes:
        by_family[outcome.family].append(outcome)
    suggestions = [(o.family, kind, family, suits) for o in outcomes for kind, family, suits in o.suggestions]
    from_family: dict[str, Counter] = defaultdict(Counter)
    from_kind: dict[str, Counter] = defaultdict(Counter)
    for product_family, kind, family, _ in suggestions:
        from_family[product_family][family] += 1
        from_kind[kind][family] += 1
    own_reads = [o.read_ms for o in outcomes if o.own and o.shown]
    borrowed_reads = [o.read_ms for o in outcomes if o.shown and not o.own]
    return {
        "products": n,
        "own_look": sum(o.own for o in outcomes) / n if n else None,
        "any_look": sum(o.shown for o in outcomes) / n if n else None,
        "borrowed": sum(o.shown and not o.own for o in outcomes) / n if n else None,
        "suggestions": len(suggestions),
        "complementary": sum(1 for pf, _, f, _ in suggestions if f != pf) / len(suggestions) if suggestions else None,
        "gender_suits": sum(1 for *_, suits in suggestions if suits) / len(suggestions) if suggestions else None,
        "per_product_family": {
            family: {
                "products": len(items),
                "own_look": sum(o.own for o in items) / len(items),
                "any_look": sum(o.shown for o in items) / len(items),
                "suggested_families": dict(from_family[family].most_common(5)),
            }
            for family, items in sorted(by_family.items(), key=lambda kv: -len(kv[1]))
        },
        "per_region_kind": {kind: dict(counts.most_common(5)) for kind, counts in sorted(from_kind.items())},
        "read_ms": {
            "own_median": statistics.median(own_reads) if own_reads else None, "own_p95": _percentile(own_reads, 0.95),
            "borrowed_median": statistics.median(borrowed_reads) if borrowed_reads else None,
            "borrowed_p95": _percentile(borrowed_reads, 0.95),
        },
    }


def compute_cost(*, product_ids: list[int], sample: int, seed: int) -> dict:
    """Recompute ``sample`` random looks one product at a time; ms per product (the looks are
    rewritten with the same result: the compute is deterministic for a given catalogue)."""
    chosen = random.Random(seed).sample(product_ids, min(sample, len(product_ids)))
    if not chosen:
        return {"sample": 0}
    product_looks_refresh(product_ids=chosen[:1])  # load the pose graph and the CNN first
    times = []
    for product_id in chosen:
        started = time.perf_counter()
        product_looks_refresh(product_ids=[product_id])
        times.append(1000 * (time.perf_counter() - started))
    return {"sample": len(chosen), "ms_median": statistics.median(times), "ms_p95": _percentile(times, 0.95)}


def screenshot_choice(outcomes: list[ProductOutcome], *, count: int, seed: int) -> list[int]:
    """``count`` random products whose page shows a look (own or borrowed), seeded."""
    shown = [o.product_id for o in outcomes if o.shown]
    return sorted(random.Random(seed).sample(shown, min(count, len(shown))))
