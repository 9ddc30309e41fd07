"""Precision and recall of the duplicate detector on labelled pairs (no database needed)."""

import json as jsonlib
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from lab.cli import reports_dir
from lab.datasets import CATALOG_DIR
from lab.evaluation.duplicates import IMAGEDEDUP_CNN_09, EvalConfig, evaluate
from lab.evaluation.duplicates import plot as draw
from lab.evaluation.relisting import RelistingConfig, evaluate_relisting
from visualsearch.duplicates.detection import NEAR_COPY_THRESHOLD


class Command(BaseCommand):
    help = (
        "Score the duplicate detector on duplicates.csv (near copies), byte-identical listings (exact copies) "
        "and pairs of different products of one article type and colour; print precision/recall, write a PR curve."
    )

    def add_arguments(self, parser):
        parser.add_argument("--data", type=Path, default=CATALOG_DIR, help="the fashion_product_images folder")
        parser.add_argument("--quick", action="store_true", help="200 positives, a pool of 600 photos, 1,000 random negatives, no synthetic edits (about a minute)")
        parser.add_argument("--limit", type=int, help="positives to use (default: all 1,076)")
        parser.add_argument("--negatives", type=int, default=3000, help="random negative pairs (default 3000)")
        parser.add_argument("--synthetic", type=int, default=100, help="photos given each synthetic edit (0: none)")
        parser.add_argument("--threshold", type=float, default=NEAR_COPY_THRESHOLD)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--json", type=Path, help="write the numbers here")
        parser.add_argument("--plot", type=Path, default=reports_dir() / "duplicates_pr.png", help="PR curve PNG")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument("--verify", action="store_true", help="also run the verification stage on the pairs the hash rule does not flag (as the workers do)")
        parser.add_argument(
            "--relisting",
            action="store_true",
            help="the re-listing benchmark instead: copies with 2-4 composed edits against hard negatives "
            "(thresholds chosen on one half, reported on the other); writes reports/duplicates_relisting.json",
        )
        parser.add_argument("--originals", type=int, default=300, help="--relisting: catalogue photos given a re-listed copy (default 300, ~5 min on 2 cores)")
        parser.add_argument("--pool", type=int, default=600, help="--relisting: extra catalogue photos the hard negatives come from")

    def handle(self, *args, data, quick, limit, negatives, synthetic, threshold, seed, json, plot: Path, no_progress, **opts):
        if not (data / "duplicates.csv").exists():
            raise CommandError(f"No duplicates.csv in {data} (the shared catalogue, ../shared/data beside the repo).")
        if opts["relisting"]:
            self._relisting(data=data, originals=opts["originals"], pool=opts["pool"], seed=seed, json=json, no_progress=no_progress)
            return
        if quick:
            limit, negatives, synthetic = limit or 200, min(negatives, 1000), 0
        config = EvalConfig(
            data_dir=data, limit=limit, pool_extra=2 * limit if quick else None, negatives=negatives, synthetic=synthetic, seed=seed,
            verify=opts["verify"],
        )
        bar = tqdm(unit="img", desc="embedding + hashing", disable=no_progress or None)

        def on_plan(total):
            bar.total = total
            bar.refresh()

        result = evaluate(config, on_plan=on_plan, on_progress=bar.update)
        bar.close()
        summary = result.summary(threshold)
        near, exact = summary["near"], summary["exact"]
        out = self.stdout.write
        out(f"Model {summary['model']}; {summary['images_embedded']} images in {summary['seconds']}s.")
        out(f"Near copies at score >= {threshold}: precision {near['precision']:.4f}, recall {near['recall']:.4f} "
            f"({near['positives']} positive pairs; {near['negatives_random']} random + {near['negatives_hard']} hardest negative pairs; "
            f"{near['false_positives']} false positives, {near['false_negatives']} missed)")
        if summary["config"]["audited_pairs"]:
            out(f"  never negatives: {len(summary['config']['audited_pairs'])} pair(s) of lab/duplicate_audit.csv, "
                f"one photograph under two ids that the shared data's scan missed: {summary['config']['audited_pairs']}")
        out(f"  precision against random negatives only {near['precision_vs_random_only']:.4f}, hardest only {near['precision_vs_hard_only']:.4f}")
        for variant, recall in near["recall_by_variant"].items():
            out(f"  recall on {variant}: {recall:.4f}")
        for name, values in near["single_signal"].items():
            threshold_text = "n/a" if values["threshold"] is None else f"{values['threshold']:.4f}"
            out(f"  best recall at precision >= 0.99, {name}: {values['recall_at_precision_0.99']:.4f} (threshold {threshold_text})")
        out(f"Exact copies (same sha256): precision {exact['precision']:.4f}, recall {exact['recall']:.4f} "
            f"({exact['positives']} byte-identical listings, {exact['negatives']} other pairs)")
        if summary["synthetic_recall"]:
            out("Synthetic edits (recall at the threshold):")
            for name, values in summary["synthetic_recall"].items():
                scope = "" if values["in_scope"] else "  (out of scope: reported for transparency)"
                out(f"  {name:20s} {values['recall']:.3f} of {values['pairs']}{scope}")
        out(f"imagededup CNN at 0.9 (published, transformed near-duplicates): precision {IMAGEDEDUP_CNN_09['precision']}, "
            f"recall {IMAGEDEDUP_CNN_09['recall']}")
        if plot:
            plot_path = plot

            draw(result, threshold=threshold, path=plot_path)
            out(f"PR curve: {plot_path}")
        if json:
            json.parent.mkdir(parents=True, exist_ok=True)
            json.write_text(jsonlib.dumps(summary, indent=2))
            out(f"Numbers: {json}")

    def _relisting(self, *, data, originals, pool, seed, json, no_progress):
        bar = tqdm(unit="img", desc="embedding + hashing", disable=no_progress or None)

        def on_plan(total):
            bar.total = total
            bar.refresh()

        result = evaluate_relisting(RelistingConfig(data_dir=data, originals=originals, pool_extra=pool, seed=seed), on_plan=on_plan, on_progress=bar.update)
        bar.close()
        out = self.stdout.write
        held = result["held_out_half"]
        chosen = result["thresholds_chosen_on_calibration_half"]
        out(f"Re-listing benchmark: {result['config']['originals']} originals, pool {result['config']['pool']}, "
            f"{result['config']['pairs']} pairs, {result['seconds']}s (embedding {result['embed_seconds']}s).")
        out(f"Thresholds chosen on the calibration half: {chosen}; shipped: {result['thresholds_shipped']}")
        out(f"Held-out half: precision {held['precision']:.4f}, recall {held['recall']:.4f} "
            f"({held['positives']} copies, {held['negatives']} hard negatives, {held['false_positives']} false positives, {held['missed']} missed)")
        hash_only = held["hash_rule_only"]
        out(f"  hash + cosine rule alone: precision {hash_only['precision']:.4f}, recall {hash_only['recall']:.4f}")
        shipped = result["held_out_half_with_shipped_thresholds"]
        out(f"  with the shipped thresholds: precision {shipped['precision']:.4f}, recall {shipped['recall']:.4f}")
        out("  recall by edit (held-out copies that include it):")
        for name, values in held["recall_by_edit"].items():
            out(f"    {name:14s} {values['recall']:.3f} of {values['pairs']}")
        out("  recall by number of composed edits:")
        for name, values in held["recall_by_number_of_edits"].items():
            out(f"    {name} edits        {values['recall']:.3f} of {values['pairs']}")
        out(f"  false positives by negative kind: {held['false_positives_by_kind']}")
        out("  precision-recall as the inlier threshold moves: " + ", ".join(
            f"{row['min_inliers']}: P {row['precision']:.3f} R {row['recall']:.3f}" for row in held["pr_curve"]))
        cost = result["cost_ms"]
        out("Cost, CPU time of one core (ms, p50 / p95): " + "; ".join(f"{name} {v['p50']} / {v['p95']}" for name, v in cost.items()))
        path = json or reports_dir() / "duplicates_relisting.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(jsonlib.dumps(result, indent=2, default=str))
        out(f"Numbers: {path}")
