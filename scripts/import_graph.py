"""The project's import graph: modules, arrows, circles, arrows that run up the layers,
and imports hidden inside functions.

    python scripts/import_graph.py            # summary; exit 1 on a circle or an upward arrow
    python scripts/import_graph.py --verbose  # every upward arrow and function-level import

Modules are the project's own ``.py`` files, tests and migrations aside; management commands
are entry points, on the top layer with ``manage.py`` (the lab's commands are the lab's). An arrow is "module A imports
module B", at module level or inside a function (both count: a lazy import is still a
dependency). Each module gets a layer from ``LAYERS`` (longest matching prefix); an arrow
from a lower layer to a higher one runs *up*. Within one layer arrows may go either way,
but not round in a circle, except a ``services`` <-> ``tasks`` pair (a task calls its
service; the service enqueues the task after commit).

The layers, lowest first, are the picture of ``docs/architecture.md``: settings; the
catalogue and the torch-only model code; the vector store; search and the duplicate
detector; indexing (workers); the HTTP edge of visual search; recommendations; the
storefront pages; the lab (evaluation, training, benchmarks), which may import anything
below it and nothing serving imports it; the URL root.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

SKIP_DIRS = {"tests", "migrations", ".venv", "node_modules", "var", "static", "templates", "docs", "reports"}

# (module prefix, layer). Longest prefix wins; both the old flat layout and the current one
# are covered so that the script measures a before and an after the same way.
LAYERS: list[tuple[str, int]] = [
    ("config.settings", 0),
    ("config.database", 0),
    ("config.replicas", 0),
    ("config.enqueue", 0),  # on-commit enqueue that survives a broker outage: Django only  # the read-replica router and middleware: Django only
    ("config.pagination", 0),  # DRF's pagination, an empty page refused: DRF only
    ("config.auth", 0),  # Django's sign-in backend, NUL refused: Django only
    ("config.middleware", 0),  # request guards (NUL in a query), where the API starts: Django only
    ("shop", 1),
    ("visualsearch.embedding", 1),
    ("visualsearch.duplicates.detection", 1),  # pure hashing arithmetic, no Django
    ("visualsearch.duplicates.verification", 1),  # pure OpenCV keypoint matching, no Django
    ("visualsearch.colour", 1),  # pure colour arithmetic, no Django
    ("visualsearch.models", 2),
    ("visualsearch.events", 2),  # what visual search announces (signal objects only), like shop.signals
    ("visualsearch.index", 2),
    ("visualsearch.reader", 2),
    ("visualsearch.duplicates.models", 2),
    ("visualsearch.selectors", 3),
    ("visualsearch.services", 3),
    ("visualsearch.photos", 3),
    ("visualsearch.categories", 3),
    ("visualsearch.looks", 4),  # kept photo searches, above the search they run
    ("visualsearch.garments", 1),  # pure localisation (mediapipe, numpy), no Django
    ("visualsearch.segmenter", 1),  # the learned flat-lay segmenter (torch), no Django
    ("visualsearch.duplicates", 4),
    ("visualsearch.tasks", 5),
    ("visualsearch.pipeline", 5),
    ("visualsearch.indexing", 5),
    ("visualsearch.health", 5),
    ("visualsearch.apps", 5),
    ("visualsearch.signals", 5),  # wiring: the catalogue's announcements to the tasks
    ("visualsearch", 6),  # views, API, forms, serializers, urls, admin, throttles
    ("visualsearch.duplicates.views", 6),
    ("visualsearch.duplicates.api", 6),
    ("visualsearch.duplicates.forms", 6),
    ("visualsearch.duplicates.serializers", 6),
    ("visualsearch.duplicates.urls", 6),
    ("recommender", 7),
    ("shop.views", 8),  # the storefront pages, before they moved out of the catalogue
    ("shop.urls", 8),
    ("storefront", 8),
    ("workers", 8),
    ("visualsearch.evaluation", 9),
    ("visualsearch.training", 9),
    ("visualsearch.duplicates.evaluation", 9),
    ("lab", 9),
    ("scripts", 9),
    ("config", 10),  # urls, wsgi, asgi
    ("manage", 10),
]
LAB_PREFIXES = (
    "lab", "scripts", "visualsearch.evaluation", "visualsearch.training", "visualsearch.duplicates.evaluation",
    # the lab's commands, before they moved to lab/
    *(f"visualsearch.management.commands.{name}" for name in ("bench", "evaluate", "evaluate_duplicates", "load_test", "train_embedder")),
)
LAB = 9
ENTRY_POINT = 10  # management commands, like manage.py, sit on top of everything


def layer_of(module: str) -> int:
    if is_lab(module):
        return LAB
    if ".management.commands." in module:
        return ENTRY_POINT
    best, depth = 10, -1
    for prefix, layer in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > depth:
            best, depth = layer, len(prefix)
    return best


def is_lab(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in LAB_PREFIXES)


@dataclass
class Graph:
    modules: dict[str, Path]
    edges: dict[str, set[str]]
    function_imports: set[tuple[str, int, str]] = field(default_factory=set)  # (module, line, target)
    lines: dict[str, int] = field(default_factory=dict)

    @property
    def arrows(self) -> list[tuple[str, str]]:
        return sorted((a, b) for a, targets in self.edges.items() for b in targets)

    def upward(self) -> list[tuple[str, str]]:
        return [(a, b) for a, b in self.arrows if layer_of(a) < layer_of(b)]

    def serving_to_lab(self) -> list[tuple[str, str]]:
        return [(a, b) for a, b in self.arrows if is_lab(b) and not is_lab(a)]

    def cycles(self) -> list[list[str]]:
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on: set[str] = set()
        found: list[list[str]] = []
        counter = [0]

        def strong(v: str) -> None:
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in sorted(self.edges[v]):
                if w not in index:
                    strong(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

        sys.setrecursionlimit(10_000)
        for v in sorted(self.edges):
            if v not in index:
                strong(v)
        return [c for c in found if not _allowed_cycle(c)]


def _allowed_cycle(component: list[str]) -> bool:
    return len(component) == 2 and {m.rpartition(".")[2] for m in component} == {"services", "tasks"}


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def build(root: Path) -> Graph:
    modules: dict[str, Path] = {}
    for directory, dirs, files in os.walk(root):
        rel = Path(directory).relative_to(root)
        if any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts):
            dirs[:] = []
            continue
        for name in files:
            if name.endswith(".py"):
                path = Path(directory) / name
                modules[_module_name(root, path)] = path

    def resolve(name: str) -> str | None:
        while name:
            if name in modules:
                return name
            name = name.rpartition(".")[0]
        return None

    graph = Graph(modules=modules, edges={m: set() for m in modules})
    for module, path in modules.items():
        source = path.read_text()
        graph.lines[module] = source.count("\n")
        tree = ast.parse(source)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        in_function: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                in_function.update(id(child) for child in ast.walk(node) if child is not node)
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(p for p in [*parts, base] if p)
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                resolved = resolve(target)
                if resolved and resolved != module:
                    graph.edges[module].add(resolved)
                    if id(node) in in_function:
                        graph.function_imports.add((module, node.lineno, resolved))
    return graph


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?", default=Path(__file__).resolve().parents[1], type=Path)
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    graph = build(args.root)
    cycles, upward, to_lab = graph.cycles(), graph.upward(), graph.serving_to_lab()
    lab_lines = sum(n for m, n in graph.lines.items() if is_lab(m))
    serving_lines = sum(graph.lines.values()) - lab_lines
    print(
        f"modules {len(graph.modules)}, arrows {len(graph.arrows)}, upward arrows {len(upward)}, "
        f"circles {len(cycles)} (largest {max((len(c) for c in cycles), default=0)}), "
        f"serving->lab arrows {len(to_lab)}, project imports inside functions {len(graph.function_imports)}, "
        f"lines: serving {serving_lines}, lab {lab_lines}"
    )
    for component in cycles:
        print("circle:", " ".join(component))
    for a, b in upward if args.verbose else upward[:10]:
        print(f"upward: {a} (layer {layer_of(a)}) -> {b} (layer {layer_of(b)})")
    for a, b in to_lab:
        print(f"serving imports the lab: {a} -> {b}")
    if args.verbose:
        for module, line, target in sorted(graph.function_imports):
            print(f"inside a function: {module}:{line} -> {target}")
    return 1 if cycles or upward or to_lab else 0


if __name__ == "__main__":
    sys.exit(main())
