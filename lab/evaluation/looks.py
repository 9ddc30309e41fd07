"""Shop the look, measured (``manage.py evaluate_looks``): does garment localisation find each
garment of a multi-garment photo, and does searching with its region find the product?

Two sets, built from the shared data and seeded:

* **composites**: 2-4 catalogue garments (cut out of their white studio background) and
  sometimes a consumer photo, pasted without overlap onto a real background (a strip of a
  consumer photo's own bed, floor or wall, stretched), with the true boxes known. The
  catalogue garments are held-out products of the model (``--holdout``), so each one is in
  the gallery and the search can be scored: R@1 / R@10 of the pasted product with the
  automatic region, with the true box, and with the whole photo;
* **people**: catalogue photos in which mediapipe sees a person (a face and hips visible):
  the product's own garment type must come back as a region (a "top" for Topwear, a "bottom"
  for Bottomwear, ...), and that region's predicted category should be the product's.

Plus single-garment consumer photos (held-out contributors): category P@10 with the
automatic region against the whole photo (it must not get worse), and the CPU latency of
localisation plus embedding every region for a 1,200-px photo.

And **drawings**: garments drawn in flat colours (pieces side by side, a band running off
both sides, one garment filling the photo), with noise of ``DRAWING_NOISE`` levels and JPEG
85: does the locator read them as drawn (``garments.is_drawing`` sends them to the colour
rule), and how many of the run's real photos does it take for drawings (none should be).

``validation=True`` (``--validation``) measures the same on the training side, where the
locator's settings are chosen before the hold-out is looked at: a sample of the training
products as the gallery (pasted into the composites), the training side's consumer photos as
backgrounds, and as single-garment photos those the model's training held back for validation
(``matching.validation_consumer_of``). Its retrieval numbers are higher than the hold-out's
(the model was trained on those products): compare one locator against another there, not
against the hold-out. The docs' validation runs use ``--seed 7``.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lab import datasets
from lab.evaluation.matching import served_scores, validation_consumer_of
from lab.evaluation.quality import holdout_split
from lab.metrics import percentiles
from lab.reports import json_write, machine_info, md_table, text_table
from lab.synthetic import jpeg_roundtrip
from visualsearch.embedding import load_embedder
from visualsearch.garments import GarmentRegion, iou, is_drawing, item_pixels, locate_garments, search_box
from visualsearch.photos import search_settings
from visualsearch.segmenter import segmenter_active

# The garment kind a catalogue subCategory is expected to come back as.
KIND_OF_SUB = {
    "Topwear": "top", "Bottomwear": "bottom", "Dress": "full_body", "Shoes": "shoes", "Flip Flops": "shoes",
    "Sandal": "shoes", "Headwear": "headwear", "Bags": "bag", "Innerwear": "top", "Loungewear and Nightwear": "full_body",
}
COMPOSITE_SUBS = ("Topwear", "Bottomwear", "Shoes", "Bags", "Dress", "Headwear", "Flip Flops", "Sandal")
CANVAS = (900, 1200)  # portrait, like a phone photo
WHITE = 232
IOU_HIT = 0.5
# Drawings: noise added (spread in levels) before JPEG 85, and how many drawings per level.
DRAWING_NOISE = (0, 4, 8)
DRAWINGS_PER_NOISE = 30
# Training-side products in the validation run's gallery: as many as a hold-out gallery holds.
VALIDATION_GALLERY = 2000


@dataclass
class Composite:
    image: Image.Image
    boxes: list[tuple[int, int, int, int]]
    kinds: list[str]  # the true garment kind of each box ("consumer" for a pasted consumer photo)
    product_ids: list[str | None]  # catalogue id of each pasted product (None: a consumer photo)


@dataclass
class LooksOptions:
    model: str
    holdout_model: str
    composites: int = 200
    people: int = 300
    consumer: int = 300
    latency_photos: int = 40
    drawings: int = DRAWINGS_PER_NOISE  # per noise level
    seed: int = 0
    out_dir: Path = Path("reports")
    command: str | None = None
    catalog_dir: Path = datasets.CATALOG_DIR
    consumer_dir: Path = datasets.CONSUMER_DIR
    validation: bool = False  # the training side instead of the hold-out (see the module docstring)
    validation_gallery: int = VALIDATION_GALLERY


def studio_cutout(path: Path) -> Image.Image:
    """A studio photo as RGBA with its white background transparent, cropped to the garment.

    The background is the white reaching the photo's border; white inside the garment (a
    white sneaker, a white shirt's body, a print) stays. Until 2026-12-06 every white pixel
    was made transparent, so a white garment was pasted as its seams over the background
    (docs/benchmarks.md, "Shop the look": 'white cut-outs').
    """
    import cv2

    rgb = Image.open(path).convert("RGB")
    rgb = rgb.resize((rgb.width, int(rgb.height * 4 / 3)))  # the catalogue photos were squashed to 1:1
    pixels = np.asarray(rgb)
    white = (pixels >= WHITE).all(axis=2).astype(np.uint8)
    _, labels = cv2.connectedComponents(white, connectivity=4)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, edge[edge > 0]) & white.astype(bool)
    alpha = np.where(background, 0, 255).astype(np.uint8)
    out = rgb.copy()
    out.putalpha(Image.fromarray(alpha))
    box = out.getbbox() if alpha.any() else None
    return out.crop(box) if box else out


def surface_background(photo: Path, rng: random.Random) -> Image.Image:
    """A real surface: a corner patch of a consumer photo (its bed, floor or wall), tiled with
    mirroring at its own scale over the canvas."""
    image = Image.open(photo).convert("RGB")
    w, h = image.size
    side = max(16, min(w, h) // 5)
    x, y = rng.choice([(0, 0), (w - side, 0), (0, h - side), (w - side, h - side)])
    patch = image.crop((x, y, x + side, y + side)).resize((150, 150), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", CANVAS)
    for ty in range(0, CANVAS[1], 150):
        for tx in range(0, CANVAS[0], 150):
            tile = patch
            if (tx // 150) % 2:
                tile = tile.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            if (ty // 150) % 2:
                tile = tile.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
            canvas.paste(tile, (tx, ty))
    return canvas


def validation_gallery_draw(train_side: list[datasets.CatalogItem], *, seed: int, size: int = VALIDATION_GALLERY) -> list[datasets.CatalogItem]:
    """The training-side products the validation run uses as its gallery (and pastes); the
    segmenter's training leaves exactly these out (lab/training/segmenter.py)."""
    return random.Random(seed).sample(train_side, min(size, len(train_side)))


def scaled(piece: Image.Image, scale: float) -> Image.Image:
    return piece.resize((max(8, int(piece.width * scale)), max(8, int(piece.height * scale))), Image.Resampling.BICUBIC)


def cell_place(piece: Image.Image, cell: tuple[int, int], rng: random.Random) -> tuple[Image.Image, int, int]:
    """``piece`` shrunk to 60-90 % of a cell of the canvas's 2x2 grid and placed at random
    inside it: (the shrunk piece, x, y)."""
    cell_w, cell_h = CANVAS[0] // 2, CANVAS[1] // 2
    piece = scaled(piece, rng.uniform(0.6, 0.9) * min(cell_w / piece.width, cell_h / piece.height))
    x = cell[0] * cell_w + rng.randint(0, max(0, cell_w - piece.width))
    y = cell[1] * cell_h + rng.randint(0, max(0, cell_h - piece.height))
    return piece, x, y


def composites_build(options: LooksOptions, gallery: list[datasets.CatalogItem], photos: list[datasets.ConsumerPhoto]) -> list[Composite]:
    rng = random.Random(options.seed)
    by_sub: dict[str, list[datasets.CatalogItem]] = defaultdict(list)
    for item in gallery:
        if item.sub_category in COMPOSITE_SUBS:
            by_sub[item.sub_category].append(item)
    subs = [s for s in COMPOSITE_SUBS if by_sub[s]]
    out = []
    for _ in range(options.composites):
        canvas = surface_background(rng.choice(photos).path, rng)
        n = rng.randint(2, 4)
        chosen_subs = rng.sample(subs, min(n, len(subs)))
        # Cells of a 2x2 grid, jittered: garments never overlap (boxes are then unambiguous).
        cells = rng.sample([(0, 0), (1, 0), (0, 1), (1, 1)], len(chosen_subs))
        boxes, kinds, ids = [], [], []
        for cell, sub in zip(cells, chosen_subs, strict=True):
            if rng.random() < 0.15 and photos:  # a consumer photo of a garment, as a rectangle
                piece = Image.open(rng.choice(photos).path).convert("RGBA")
                kind, pid = "consumer", None
            else:
                item = rng.choice(by_sub[sub])
                piece, kind, pid = studio_cutout(item.path), KIND_OF_SUB.get(sub, "item"), item.id
            piece, x, y = cell_place(piece, cell, rng)
            canvas.paste(piece, (x, y), piece)
            boxes.append((x, y, x + piece.width, y + piece.height))
            kinds.append(kind)
            ids.append(pid)
        out.append(Composite(image=canvas, boxes=boxes, kinds=kinds, product_ids=ids))
    return out


def _search_crop(region: GarmentRegion, image: Image.Image) -> tuple[int, int, int, int]:
    """What the app embeds for a region (``visualsearch.garments.search_box``)."""
    return search_box(region.box, image.width, image.height, region.context)


def _best_region(regions: list[GarmentRegion], box) -> tuple[GarmentRegion | None, float]:
    scored = [(r, iou(r.box, box)) for r in regions]
    return max(scored, key=lambda s: s[1], default=(None, 0.0))


def _served_retrieval(model: str, queries: dict[str, list[np.ndarray]], targets: list[int], gallery_vectors: np.ndarray,
                      gallery: list[datasets.CatalogItem]) -> dict:
    """R@1 / R@10 of the pasted products with the ranking serving uses (narrowed to a confident
    category guess, then the model's category term, ``matching.served_scores``); the plain ranking
    above is the embedding's alone."""
    tuned = search_settings(model)
    out = {"category_weight": tuned.category_weight, "category_gate": min(tuned.category_gate, 2.0),
           "narrow_gate": min(tuned.narrow_gate, 2.0)}
    for name, vectors in queries.items():
        if not vectors:
            continue
        scores = served_scores(model, np.array(vectors), gallery_vectors, gallery, tuned.category_weight, tuned.category_gate,
                               tuned.narrow_gate)
        order = np.argsort(-scores, axis=1, kind="stable")
        out[name] = _recalls([int(np.flatnonzero(row == target)[0]) for row, target in zip(order, targets, strict=True)])
    return out


def _recalls(ranks: list[int]) -> dict:
    """R@1 / R@10 of the pasted products from their ranks (0: first)."""
    ranks_ = np.array(ranks)
    return {"r1": float(np.mean(ranks_ < 1)), "r10": float(np.mean(ranks_ < 10)), "n": len(ranks)}


def _drawn_colour(rng: random.Random, background: tuple[int, int, int]) -> tuple[int, int, int]:
    while True:
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        if max(abs(a - b) for a, b in zip(colour, background, strict=True)) >= 60:
            return colour


def drawing_build(rng: random.Random, noise: float) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """A flat-lay drawn in flat colours on a plain sheet or on white, with noise of spread ``noise`` and JPEG 85,
    and its garments' boxes; no box when one garment fills the photo (the photo is the item).
    A third each: 1-3 rectangles or ellipses at least 24 px apart, a band running off both
    sides (sometimes with a print), one garment filling 88-96 % of each side."""
    w, h = CANVAS
    background = (255, 255, 255) if rng.random() < 0.3 else tuple(rng.randint(200, 240) for _ in range(3))
    image = Image.new("RGB", CANVAS, background)
    draw = ImageDraw.Draw(image)
    layout = rng.choice(("pieces", "band", "filling"))
    boxes: list[tuple[int, int, int, int]] = []
    if layout == "filling":
        mx, my = int(w * rng.uniform(0.02, 0.06)), int(h * rng.uniform(0.02, 0.06))
        draw.rectangle((mx, my, w - mx, h - my), fill=_drawn_colour(rng, background))
    elif layout == "band":
        top = int(h * rng.uniform(0.2, 0.35))
        box = (0, top, w, top + int(h * rng.uniform(0.4, 0.55)))
        draw.rectangle(box, fill=_drawn_colour(rng, background))
        if rng.random() < 0.5:  # a print on it: part of the garment
            x, y = int(w * rng.uniform(0.35, 0.5)), box[1] + int((box[3] - box[1]) * rng.uniform(0.25, 0.5))
            draw.rectangle((x, y, x + w // 7, y + h // 16), fill=_drawn_colour(rng, background))
        boxes.append(box)
    else:
        for _ in range(rng.randint(1, 3)):
            for _attempt in range(50):
                bw, bh = int(w * rng.uniform(0.2, 0.45)), int(h * rng.uniform(0.15, 0.4))
                x, y = rng.randint(0, w - bw), rng.randint(0, h - bh)
                box = (x, y, x + bw, y + bh)
                if all(box[0] >= b[2] + 24 or b[0] >= box[2] + 24 or box[1] >= b[3] + 24 or b[1] >= box[3] + 24 for b in boxes):
                    (draw.rectangle if rng.random() < 0.6 else draw.ellipse)(box, fill=_drawn_colour(rng, background))
                    boxes.append(box)
                    break
    pixels = np.asarray(image, np.float32)
    if noise:
        pixels = pixels + np.random.default_rng(rng.getrandbits(32)).normal(0, noise, pixels.shape)
    return jpeg_roundtrip(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), 85), boxes


def drawings_measure(seed: int, per_noise: int = DRAWINGS_PER_NOISE) -> dict:
    """Per noise level: the share of drawings taken for drawings, and read as drawn (each
    garment a region at IoU >= IOU_HIT and no other region; no region when one fills the photo)."""
    out = {}
    for noise in DRAWING_NOISE:
        rng = random.Random(f"{seed}:drawings:{noise}")
        taken = right = 0
        for _ in range(per_noise):
            image, boxes = drawing_build(rng, noise)
            taken += is_drawing(item_pixels(image))
            regions = locate_garments(image)
            right += len(regions) == len(boxes) and all(_best_region(regions, box)[1] >= IOU_HIT for box in boxes)
        out[str(noise)] = {"drawings": per_noise, "taken_for_drawings": taken / per_noise, "read_as_drawn": right / per_noise}
    return out


def looks_run(options: LooksOptions, log: Callable[[str], None] = print) -> dict:
    started = time.perf_counter()
    split = holdout_split(options.holdout_model)
    catalogue = datasets.catalog_read(options.catalog_dir)
    held = split.product_holdout([i.id for i in catalogue], options.catalog_dir)
    consumer = datasets.consumer_read(options.consumer_dir)
    if options.validation:
        train_side = [i for i in catalogue if i.id not in held]
        gallery = validation_gallery_draw(train_side, seed=options.seed, size=options.validation_gallery)
        photos = [p for p in consumer if not split.consumer_is_holdout(p.sender_id, p.id)]
        held_back = validation_consumer_of(options.holdout_model)
        if held_back is None:
            raise ValueError(f"{options.holdout_model} records no validation split: use its hold-out.")
        single_photos = [p for p in photos if held_back(p)]
        side = f"{len(gallery):,} training-side products of {options.holdout_model} (validation)"
    else:
        gallery = [i for i in catalogue if i.id in held]
        photos = single_photos = [p for p in consumer if split.consumer_is_holdout(p.sender_id, p.id)]
        side = f"{len(gallery):,} held-out products of {options.holdout_model}"
    embedder = load_embedder(options.model)
    log(f"gallery: {side}; embedding them with {options.model}")
    gallery_vectors = embedder.embed([Image.open(i.path) for i in gallery])
    row_of = {item.id: n for n, item in enumerate(gallery)}
    learned = segmenter_active()
    result: dict = {"command": options.command, "model": options.model, "holdout_model": options.holdout_model,
                    "flat_lay_locator": f"segmenter {learned.name}" if learned is not None else "colour rule",
                    "side": "validation" if options.validation else "holdout", "gallery": len(gallery),
                    "machine": machine_info()}

    # Composites: localisation, then retrieval per pasted product.
    comps = composites_build(options, gallery, photos)
    found: dict[str, list[bool]] = defaultdict(list)
    predicted = correct_predictions = 0
    ranks = {"auto": [], "true_box": [], "whole": []}
    queries: dict[str, list[np.ndarray]] = {name: [] for name in ranks}  # for the ranking as served, below
    targets: list[int] = []
    taken_for_drawings = {"composites": 0, "single_garment": 0}
    for comp in comps:
        regions = locate_garments(comp.image)
        taken_for_drawings["composites"] += is_drawing(item_pixels(comp.image))
        predicted += len(regions)
        matched = set()
        for box, kind, pid in zip(comp.boxes, comp.kinds, comp.product_ids, strict=True):
            region, overlap = _best_region(regions, box)
            found[kind].append(overlap >= IOU_HIT)
            if overlap >= IOU_HIT:
                matched.add(region)
            if pid is None:
                continue
            crops = {"true_box": comp.image.crop(box), "whole": comp.image}
            crops["auto"] = comp.image.crop(_search_crop(region, comp.image)) if region is not None and overlap > 0 else comp.image
            vectors = embedder.embed_queries(list(crops.values()), whole=[name == "whole" for name in crops])
            for (name, _), vector in zip(crops.items(), vectors, strict=True):
                order = np.argsort(-(gallery_vectors @ vector))
                ranks[name].append(int(np.flatnonzero(order == row_of[pid])[0]))
                queries[name].append(vector)
            targets.append(row_of[pid])
        correct_predictions += len(matched)
    result["composites"] = {
        "photos": len(comps),
        "recall_by_kind": {k: {"n": len(v), "recall": float(np.mean(v))} for k, v in sorted(found.items())},
        "recall_all": float(np.mean([x for v in found.values() for x in v])),
        "precision": correct_predictions / predicted if predicted else None,
        "retrieval": {name: _recalls(r) for name, r in ranks.items()},
        "retrieval_as_served": _served_retrieval(options.model, queries, targets, gallery_vectors, gallery),
    }
    log(f"composites: {result['composites']}")

    # People in catalogue photos: is the product's own garment a region?
    people = []
    rng = random.Random(options.seed)
    for item in rng.sample(catalogue, len(catalogue)):
        if len(people) >= options.people:
            break
        if item.sub_category not in KIND_OF_SUB:
            continue
        image = Image.open(item.path).convert("RGB")
        image = image.resize((image.width, int(image.height * 4 / 3)))
        regions = locate_garments(image)
        if any(r.kind in ("top", "bottom", "full_body") for r in regions) and len({r.kind for r in regions}) >= 2:
            people.append((item, regions))
    own = [KIND_OF_SUB[item.sub_category] in {r.kind for r in regions} for item, regions in people]
    per_sub: dict[str, list[bool]] = defaultdict(list)
    for (item, _), hit in zip(people, own, strict=True):
        per_sub[item.sub_category].append(hit)
    result["people"] = {
        "photos": len(people),
        "own_garment_found": float(np.mean(own)) if own else None,
        "by_sub_category": {k: {"n": len(v), "found": float(np.mean(v))} for k, v in sorted(per_sub.items())},
    }
    log(f"people: {result['people']}")

    # Single-garment consumer photos: category P@10 with the automatic region vs the whole photo.
    mapping = datasets.label_mapping_load()
    types = np.array([g.article_type for g in gallery])
    sample = [p for p in random.Random(options.seed).sample(single_photos, min(options.consumer, len(single_photos)))
              if p.label in mapping.article_types]
    p10 = {"whole": [], "auto": []}
    for photo in sample:
        image = Image.open(photo.path).convert("RGB")
        regions = locate_garments(image)
        taken_for_drawings["single_garment"] += is_drawing(item_pixels(image))
        crops = [image, image.crop(_search_crop(regions[0], image)) if regions else image]
        for name, vector in zip(("whole", "auto"), embedder.embed_queries(crops, whole=[True, False]), strict=True):
            top = np.argsort(-(gallery_vectors @ vector))[:10]
            p10[name].append(float(np.isin(types[top], mapping.article_types[photo.label]).mean()))
    result["single_garment"] = {"photos": len(sample), "p10_whole": float(np.mean(p10["whole"])), "p10_auto": float(np.mean(p10["auto"]))}
    log(f"single-garment consumer photos: {result['single_garment']}")

    # Drawings in flat colours: read as drawn? And no real photo of this run taken for one.
    result["drawings"] = {"by_noise": drawings_measure(options.seed, options.drawings),
                          "real_photos_taken_for_drawings": {"composites": [taken_for_drawings["composites"], len(comps)],
                                                             "single_garment": [taken_for_drawings["single_garment"], len(sample)]}}
    log(f"drawings: {result['drawings']}")

    # Latency on a 1,200-px photo: localisation + embedding every region (and the whole photo).
    times_locate, times_total = [], []
    for comp in comps[: options.latency_photos]:
        t0 = time.perf_counter()
        regions = locate_garments(comp.image)
        t1 = time.perf_counter()
        embedder.embed_queries([comp.image] + [comp.image.crop(_search_crop(r, comp.image)) for r in regions],
                               whole=[True] + [False] * len(regions))
        times_locate.append((t1 - t0) * 1000)
        times_total.append((time.perf_counter() - t0) * 1000)
    result["latency_ms"] = {"locate": percentiles(times_locate, (50, 95)), "locate_and_embed": percentiles(times_total, (50, 95)),
                            "photo_size": list(CANVAS)}
    log(f"latency: {result['latency_ms']}")
    result["seconds"] = round(time.perf_counter() - started, 1)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    json_write(options.out_dir / "looks.json", result)
    (options.out_dir / "looks.md").write_text(looks_markdown(result))
    return result


def looks_rows(result: dict) -> list[tuple[list[str], list[list[str]]]]:
    c = result["composites"]
    tables = [(["garment kind", "boxes", "recall at IoU ≥ 0.5"],
               [[k, str(v["n"]), f"{v['recall']:.3f}"] for k, v in c["recall_by_kind"].items()]
               + [["all", str(sum(v["n"] for v in c["recall_by_kind"].values())), f"{c['recall_all']:.3f}"],
                  ["precision of the regions", "", f"{c['precision']:.3f}" if c["precision"] is not None else "–"]])]
    served = c.get("retrieval_as_served", {})
    tables.append((["query region", "R@1", "R@10", "R@1 as served", "R@10 as served", "pasted products"],
                   [[k, f"{v['r1']:.3f}", f"{v['r10']:.3f}",
                     f"{served[k]['r1']:.3f}" if k in served else "–", f"{served[k]['r10']:.3f}" if k in served else "–", str(v["n"])]
                    for k, v in c["retrieval"].items()]))
    s = result["single_garment"]
    tables.append((["single-garment consumer photos", "category P@10"],
                   [["whole photo", f"{s['p10_whole']:.3f}"], ["automatic region", f"{s['p10_auto']:.3f}"]]))
    if "drawings" in result:
        d = result["drawings"]
        taken = d["real_photos_taken_for_drawings"]
        tables.append((["drawings in flat colours, JPEG 85", "drawings", "taken for drawings", "read as drawn"],
                       [[f"noise sd {noise}", str(v["drawings"]), f"{v['taken_for_drawings']:.3f}", f"{v['read_as_drawn']:.3f}"]
                        for noise, v in d["by_noise"].items()]
                       + [[f"real photos: {name.replace('_', '-')}", str(n), str(k), ""] for name, (k, n) in taken.items()]))
    lat = result["latency_ms"]
    tables.append((["CPU latency, 1,200-px photo", "p50 ms", "p95 ms"],
                   [["localisation", f"{lat['locate']['p50']:.0f}", f"{lat['locate']['p95']:.0f}"],
                    ["localisation + embedding every region", f"{lat['locate_and_embed']['p50']:.0f}", f"{lat['locate_and_embed']['p95']:.0f}"]]))
    return tables


def looks_markdown(result: dict) -> str:
    where = "the validation side" if result.get("side") == "validation" else "the hold-out"
    lines = [f"# Shop the look on {where} of {result['holdout_model']} ({result['model']})", "",
             f"Command: `{result.get('command')}`", "",
             f"Items lying flat found by: {result.get('flat_lay_locator', 'colour rule')}.", ""]
    for header, rows in looks_rows(result):
        lines += [md_table(header, rows), ""]
    p = result["people"]
    lines.append(f"People in catalogue photos: {p['photos']} photos; the product's own garment came back as a region in "
                 f"{p['own_garment_found']:.3f} of them." if p["own_garment_found"] is not None else "People: none found.")
    return "\n".join(lines) + "\n"


def looks_text(result: dict) -> str:
    return "\n\n".join(text_table(header, rows) for header, rows in looks_rows(result))
