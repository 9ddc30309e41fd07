"""``manage.py models``: the model lifecycle from a shell (the staff page /staff/models/ does the same).

    python manage.py models                      # list: state, coverage, hold-out metrics
    python manage.py models index NAME           # index NAME here, beside the active model
    python manage.py models index NAME --enqueue # ... or in the workers, in the background
    python manage.py models promote NAME         # make NAME active (refused until its index is complete)
    python manage.py models rollback             # back to the model the last promotion replaced
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from visualsearch import pipeline, selectors, services, tasks


class Command(BaseCommand):
    help = "List embedding models; index one beside the active model; promote it; roll back."

    def add_arguments(self, parser):
        parser.add_argument("action", nargs="?", default="list", choices=("list", "index", "promote", "rollback"))
        parser.add_argument("name", nargs="?")
        parser.add_argument("--enqueue", action="store_true", help="index: send the work to the workers instead")

    def handle(self, *args, action="list", name=None, enqueue=False, **opts):
        if action in ("index", "promote") and not name:
            raise CommandError(f"models {action} needs a model name.")
        try:
            if action == "list":
                self._list()
            elif action == "index":
                self._index(name, enqueue=enqueue)
            elif action == "promote":
                services.model_promote(name=name)
                self.stdout.write(self.style.SUCCESS(f"{name} is the active model."))
            else:
                model = services.model_rollback()
                self.stdout.write(self.style.SUCCESS(f"Rolled back: {model.name} is the active model."))
        except services.ModelNotReady as exc:
            raise CommandError(str(exc)) from exc

    def _list(self) -> None:
        for m in selectors.model_overview():
            views = m.metrics.get("exact", {}).get("consumer_like", {}).get("r1")
            metric = f", hold-out views R@1 {views:.3f}" if views is not None else ""
            self.stdout.write(f"{m.name:<40} {m.state:<10} {m.dim or '-':>5}-d  {m.vectors:>7} / {m.reference} images{metric}")

    def _index(self, name: str, *, enqueue: bool) -> None:
        services.model_index_request(name=name)
        if enqueue:
            tasks.model_index_schedule(name=name)
            self.stdout.write(f"Indexing of {name} sent to the workers.")
            return
        with tqdm(unit="img", desc=f"indexing {name}") as bar:
            while True:
                report = pipeline.model_index_build(name=name, on_progress=bar.update)
                if report.complete or not report.embedded:
                    break
        state = "complete: it can be promoted" if report.complete else f"{report.remaining} images still missing"
        self.stdout.write(self.style.SUCCESS(f"{name}: {state}."))
