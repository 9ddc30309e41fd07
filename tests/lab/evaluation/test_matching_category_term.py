"""The lab's mirror of serving's category term (``lab.evaluation.matching``)."""

import numpy as np

from lab.evaluation import matching
from visualsearch.selectors import COLOUR_CANDIDATES_FACTOR, FOLD_HEADROOM


def test_only_the_candidates_serving_fetches_are_re_ranked():
    gallery = 60
    scores = np.linspace(1.0, 0.0, gallery)[None, :].repeat(2, axis=0)  # row order = gallery order
    prior = np.zeros((2, gallery))
    prior[:, matching.CANDIDATES - 1] = 1.0  # the last candidate serving fetches
    prior[:, matching.CANDIDATES] = 1.0  # the first one it does not
    out = matching._category_term(scores, prior, 1.0)
    assert matching.CANDIDATES == matching.TOP * COLOUR_CANDIDATES_FACTOR + FOLD_HEADROOM
    ranking = matching._ranking(out, matching.TOP)
    assert ranking[0, 0] == matching.CANDIDATES - 1  # promoted from the bottom of the candidates
    assert matching.CANDIDATES not in ranking[0] and np.isneginf(out[0, matching.CANDIDATES:]).all()
    assert np.array_equal(matching._category_term(scores, prior, 0.0), scores)
    assert np.array_equal(matching._category_term(scores, None, 0.5), scores)


def test_a_narrowed_search_keeps_its_scope():
    scores = np.array([[0.9, 0.8, 0.7, 0.6]])
    narrowed = np.where([[True, False, True, False]], scores, -np.inf)
    out = matching._category_term(narrowed, np.array([[0.0, 1.0, 0.0, 1.0]]), 1.0)
    assert np.isneginf(out[0, [1, 3]]).all() and np.allclose(out[0, [0, 2]], [0.9, 0.7])


def test_a_row_whose_best_score_reaches_the_gate_is_left_alone():
    scores = np.array([[0.9, 0.5, 0.4], [0.45, 0.4, 0.3]])
    prior = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    out = matching._category_term(scores, prior, 1.0, gate=0.5)
    assert np.array_equal(out[0], scores[0])  # 0.9 >= 0.5: a photo of that product
    assert out[1].argmax() == 1  # 0.45 < 0.5: the guess counts


def test_a_confident_guess_narrows_below_the_narrowing_gate_or_around_its_nearest_product():
    scores = np.array([[0.9, 0.5, 0.4], [0.55, 0.5, 0.3]])
    guesses = [("Jeans", 0.95, 0.5, ("Jeans",)), ("Jeans", 0.95, 0.5, ("Jeans",))]
    jeans_only = lambda labels: np.array([False, True, False])  # noqa: E731
    always, narrowed_always = matching._narrowed(scores, guesses, jeans_only)
    gated, narrowed_gated = matching._narrowed(scores, guesses, jeans_only, gate=0.6)
    assert narrowed_always == 2 and always[0].argmax() == 1
    assert narrowed_gated == 1 and np.array_equal(gated[0], scores[0])  # 0.9 >= 0.6: a photo of that product
    assert np.isneginf(gated[1, [0, 2]]).all()  # 0.55 < 0.6: narrowed as before
    assert matching.NARROW_GATES[-1] > 1.0  # the last choice never gates
    # A close nearest product inside the guess's scope stays reachable: narrowing goes ahead.
    inside = lambda labels: np.array([True, True, False])  # noqa: E731
    kept, narrowed_inside = matching._narrowed(scores, guesses, inside, gate=0.6)
    assert narrowed_inside == 2 and kept[0].argmax() == 0 and np.isneginf(kept[0, 2])


def test_a_small_guessed_type_is_widened_by_the_next_guesses_as_serving_widens_it():
    """``_scope_masks`` mirrors ``categories.narrowing_scope``: the likeliest guesses, in order,
    until together they hold MIN_CATEGORY_PRODUCTS gallery products; else the sub-category,
    then the master category."""
    from lab import datasets
    from visualsearch.categories import MIN_CATEGORY_PRODUCTS as MIN

    def item(n: int, article_type: str, sub: str, master: str = "Apparel"):
        return datasets.CatalogItem(id=str(n), path=None, article_type=article_type, sub_category=sub,
                                    master_category=master, gender="Women")

    gallery = ([item(n, "Dresses", "Dress") for n in range(3)] + [item(10 + n, "Kurtis", "Topwear") for n in range(MIN - 3)]
               + [item(100 + n, "Tshirts", "Topwear") for n in range(MIN)])
    scope = matching._scope_masks(gallery)
    types = np.array([g.article_type for g in gallery])
    assert np.array_equal(scope(("Dresses", "Kurtis", "Tshirts")), np.isin(types, ["Dresses", "Kurtis"]))
    assert np.array_equal(scope(("Tshirts", "Dresses")), types == "Tshirts")  # big enough alone
    assert np.array_equal(scope(("Dresses",)), np.ones(len(gallery), bool))  # the sub-category is small: Apparel


def test_a_fixed_category_gate_is_the_only_gate_the_rule_tries(monkeypatch):
    """``evaluate_matching --category-gate G``: the weight is still chosen by the rule, at G only."""
    from types import SimpleNamespace

    monkeypatch.setattr(matching, "validation_consumer_of", lambda name: (lambda photo: True))
    monkeypatch.setattr(matching, "load_embedder", lambda name: SimpleNamespace(category_head=object()))
    monkeypatch.setattr(matching, "served_before_term",
                        lambda name, queries, gallery_vectors, gallery, gate=np.inf: (queries @ gallery_vectors.T, None))
    gates_tried = []
    real_term = matching._category_term
    monkeypatch.setattr(matching, "_category_term",
                        lambda scores, prior, weight, gate=np.inf: gates_tried.append(gate) or real_term(scores, prior, weight, gate))
    items = [SimpleNamespace(id=str(n), article_type=t) for n, t in enumerate(("Shirts", "Jeans"))]
    sets = SimpleNamespace(select_gallery=items, select_consumer=[SimpleNamespace(label="Shirt")],
                           select_views=[(items[0], "view.jpg")], select_twins=[{0}, {1}])
    vectors = {"select_gallery": np.eye(2, dtype=np.float32), "select_consumer": np.array([[0.9, 0.1]], np.float32),
               "select_views": np.array([[1.0, 0.0]], np.float32)}
    mapping = SimpleNamespace(article_types={"Shirt": ("Shirts",)})
    weight, gate, _, selection = matching._category_weight_choose("m", sets, vectors, mapping, gates=(0.55,))
    assert set(gates_tried) == {0.55, matching.CATEGORY_GATES[-1]}  # and "no term" (weight 0) as the baseline
    assert set(selection["trials"]) == {"0.0/2.0"} | {f"{w}/0.55" for w in matching.CATEGORY_WEIGHTS if w > 0}
    assert weight == 0.0 or gate == 0.55
    # By default, every gate of the rule.
    gates_tried.clear()
    matching._category_weight_choose("m", sets, vectors, mapping)
    assert set(gates_tried) == set(matching.CATEGORY_GATES)


def test_the_command_passes_a_fixed_gate_on(monkeypatch, tmp_path):
    import io

    from django.core.management import call_command

    from lab.management.commands import evaluate_matching

    seen = {}

    def run(options, log):
        seen["gates"] = options.category_gates
        return {"models": {}}

    monkeypatch.setattr(evaluate_matching, "matching_run", run)
    monkeypatch.setattr(evaluate_matching, "matching_text", lambda result: "")
    (tmp_path / "labels.csv").write_text("id\n")
    call_command("evaluate_matching", "--holdout", "efficientnet_lite0", "--model", "efficientnet_lite0",
                 "--catalog", str(tmp_path), "--category-gate", "0.55", "--out", str(tmp_path / "out"), stdout=io.StringIO())
    assert seen["gates"] == (0.55,)
    call_command("evaluate_matching", "--holdout", "efficientnet_lite0", "--catalog", str(tmp_path),
                 "--out", str(tmp_path / "out"), stdout=io.StringIO())
    assert seen["gates"] is None
