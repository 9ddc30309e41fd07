"""What a shopper photographed, as the catalogue's categories: "Looks like: Dresses".

Two sources, best first:

* the active model's category classifier (``embedding/categories.py``; its labels are the
  training catalogue's articleTypes), mapped onto this catalogue's categories by name;
* for a model without one, or a catalogue whose categories the classifier does not know,
  a vote of the photo's nearest products, weighted by similarity.

A guess is used to narrow the search when it is confident (``auto_category``); a category
too small to fill a page is widened first by the next likely guesses, so "Dresses" with five
products becomes Dresses and Kurtis when the classifier sees a kurti next, and only when those
do not fill a page either, to its parent's shelf (``narrowing_scope``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db.models import Count

from shop.models import Category, Product
from visualsearch.embedding import load_embedder
from visualsearch.selectors import nearest_product_ids

# Guesses shown to the shopper (the chip and its alternatives).
GUESSES_SHOWN = 4
# Alternatives below this probability are noise, not choices worth a chip.
MIN_GUESS_PROBABILITY = 0.05
# The nearest-products vote: how many neighbours, and how sharply similarity counts
# (weights exp(cosine / T)).
VOTE_NEIGHBOURS = 40
VOTE_TEMPERATURE = 0.05
# Without a trained threshold (the neighbour vote), restrict the search above this share.
VOTE_AUTO_THRESHOLD = 0.6
# A category with fewer active products than this is widened to its parent for the search:
# a page of results should be a page.
MIN_CATEGORY_PRODUCTS = 12


@dataclass(frozen=True)
class CategoryGuess:
    category: Category
    probability: float


@dataclass(frozen=True)
class CategoryDecision:
    guesses: list[CategoryGuess]  # most likely first
    source: str  # "classifier" or "neighbours"
    threshold: float  # the probability above which the top guess narrows the search
    applied: Category | None  # the category the search is narrowed to (the guess, or its parent)
    # Every category the search is narrowed to: ``applied`` alone, or the guess and the next
    # likely guesses when the guess alone is too small (``narrowing_scope``); empty when not narrowed.
    scope: tuple[Category, ...] = ()
    # The classifier's probability of every category it knows (category id -> probability),
    # for the search's category term; empty for the neighbour vote, whose weight was never measured.
    prior: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.applied is not None and not self.scope:  # narrowed to one category
            object.__setattr__(self, "scope", (self.applied,))

    @property
    def top(self) -> CategoryGuess | None:
        return self.guesses[0] if self.guesses else None

    @property
    def scope_label(self) -> str:
        """The narrowed scope for the shopper: "Dresses", "Dresses and Kurtis", "A, B and C"."""
        names = [c.name for c in self.scope]
        return " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"


class _Shelves:
    """The category tree and how many active products each node holds, read at most every
    ``VISUALSEARCH_SHELVES_TTL`` seconds per process: every photo search consults them (4 queries), and a
    minute-old count only moves the point where a small category is widened."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.read_at = float("-inf")
        self.by_name: dict[str, list[Category]] = {}
        self.nodes: dict[int, Category] = {}
        self.sizes: dict[int, int] = {}

    def get(self) -> _Shelves:
        now = time.monotonic()
        with self.lock:
            if now - self.read_at >= settings.VISUALSEARCH_SHELVES_TTL:
                self._read()
                self.read_at = now
            return self

    def _read(self) -> None:
        counts = dict(
            Product.objects.filter(status=Product.Status.ACTIVE).values_list("category_id").annotate(n=Count("id")).values_list("category_id", "n")
        )
        self.nodes = {c.id: c for c in Category.objects.only("id", "name", "slug", "parent_id", "depth")}
        children: dict[int | None, list[int]] = defaultdict(list)
        for node in self.nodes.values():
            children[node.parent_id].append(node.id)

        def size(node_id: int) -> int:
            return counts.get(node_id, 0) + sum(size(child) for child in children[node_id])

        self.sizes = {node_id: size(node_id) for node_id in self.nodes}
        self.by_name = defaultdict(list)
        for node_id in counts:
            if node_id in self.nodes:
                self.by_name[self.nodes[node_id].name.lower()].append(self.nodes[node_id])


_shelves = _Shelves()


def shelves_forget() -> None:
    """Forget the cached tree and counts (tests that change the catalogue between searches)."""
    with _shelves.lock:
        _shelves.read_at = float("-inf")


def _leaf_categories_by_name() -> dict[str, list[Category]]:
    """Categories that hold active products directly, by lower-cased name."""
    return _shelves.get().by_name


def _from_classifier(vector: np.ndarray, model_name: str) -> list[CategoryGuess]:
    head = load_embedder(model_name).category_head
    if head is None:
        return []
    by_name = _leaf_categories_by_name()
    mass: dict[int, float] = defaultdict(float)
    categories: dict[int, Category] = {}
    for label, probability in head.top(vector, k=len(head.labels)):
        matches = by_name.get(label.lower(), [])
        for category in matches:  # one articleType filed under several parents: split its mass
            mass[category.id] += probability / len(matches)
            categories[category.id] = category
    total = sum(mass.values())
    if total < 0.5:  # the classifier's labels hardly exist here: another catalogue
        return []
    ranked = sorted(mass.items(), key=lambda item: -item[1])
    return [CategoryGuess(categories[cid], p / total) for cid, p in ranked]


def _from_neighbours(vector: np.ndarray, model_name: str) -> list[CategoryGuess]:
    hits = nearest_product_ids(vector=vector, k=VOTE_NEIGHBOURS, model_name=model_name)
    if not hits:
        return []
    category_of = dict(Product.objects.filter(id__in=[h[0] for h in hits]).values_list("id", "category_id"))
    votes: dict[int, float] = defaultdict(float)
    for product_id, _, score in hits:
        votes[category_of[product_id]] += math.exp(score / VOTE_TEMPERATURE - 1 / VOTE_TEMPERATURE)
    total = sum(votes.values())
    categories = Category.objects.in_bulk(list(votes))
    ranked = sorted(votes.items(), key=lambda item: -item[1])
    return [CategoryGuess(categories[cid], weight / total) for cid, weight in ranked]


def category_scope(category: Category, *, min_products: int = MIN_CATEGORY_PRODUCTS) -> Category:
    """``category``, or its nearest ancestor holding at least ``min_products`` active products."""
    shelves = _shelves.get()
    node = shelves.nodes.get(category.id, category)
    while shelves.sizes.get(node.id, 0) < min_products and node.parent_id in shelves.nodes:
        node = shelves.nodes[node.parent_id]
    return node


def narrowing_scope(guesses: list[CategoryGuess], *, min_products: int = MIN_CATEGORY_PRODUCTS) -> tuple[Category, tuple[Category, ...]]:
    """(the category a search narrowed to the top guess is shown as, the categories it
    searches): the top guess alone when it holds ``min_products`` active products; else the
    guesses in the classifier's order (``category_decide`` passes the GUESSES_SHOWN likeliest,
    however unlikely: the next guess is a better neighbour than the tree's whole department)
    until together they hold that many; else, as before, the top guess's nearest ancestor
    holding that many (``category_scope``).

    Why the guesses before the tree: the catalogue files a small category under a wide parent
    (Dresses, 4 products of v10's hold-out, under Apparel, 1,097), so the parent's page is
    mostly other garments, while the classifier's next guesses for a dress photo are the
    dress-like ones (Kurtis). On v10's hold-out: top 8 of the garment's type 0.773 -> 0.800,
    P@10 0.767 -> 0.797 (docs/benchmarks.md, "A small guessed category widened by the next
    guesses")."""
    top = guesses[0].category
    sizes = _shelves.get().sizes
    if sizes.get(top.id, 0) >= min_products:
        return top, (top,)
    chosen: list[Category] = []
    for guess in guesses:
        if sizes.get(guess.category.id, 0) and guess.category not in chosen:
            chosen.append(guess.category)
        if sum(sizes.get(c.id, 0) for c in chosen) >= min_products:
            return top, tuple(chosen)
    wide = category_scope(top, min_products=min_products)
    return wide, (wide,)


def category_holds_product(categories: tuple[Category, ...], *, product_id: int) -> bool:
    """Whether the product is filed under one of ``categories`` or their descendants (a search
    narrowed to them can show it). One query for the product's category; its ancestors come
    from the cached tree, as ``category_scope`` walks it (``shop.filters.
    category_descendant_ids`` would read the whole tree again on this hot path)."""
    node_id = Product.objects.filter(id=product_id).values_list("category_id", flat=True).first()
    nodes = _shelves.get().nodes
    wanted = {c.id for c in categories}
    while node_id is not None and node_id not in wanted:
        node = nodes.get(node_id)
        node_id = node.parent_id if node is not None else None
    return node_id is not None


def category_decide(*, vector: np.ndarray, model_name: str, auto: bool = True) -> CategoryDecision:
    """Guess the photo's category; with ``auto``, the category to narrow the search to when
    the guess is confident (None otherwise)."""
    guesses, source = _from_classifier(vector, model_name), "classifier"
    head = load_embedder(model_name).category_head
    threshold = head.auto_threshold if head is not None else VOTE_AUTO_THRESHOLD
    if not guesses:
        guesses, source, threshold = _from_neighbours(vector, model_name), "neighbours", VOTE_AUTO_THRESHOLD
    shown = [g for g in guesses[:GUESSES_SHOWN] if g.probability >= MIN_GUESS_PROBABILITY] or guesses[:1]
    applied, scope = None, ()
    if auto and shown and shown[0].probability >= threshold:
        applied, scope = narrowing_scope(guesses[:GUESSES_SHOWN])
    prior = {g.category.id: g.probability for g in guesses} if source == "classifier" else {}
    return CategoryDecision(guesses=shown, source=source, threshold=threshold, applied=applied, prior=prior, scope=scope)
