"""The layout's rules (docs/architecture.md), checked on every run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scripts import import_graph

REPO = Path(__file__).resolve().parents[1]


def test_imports_point_one_way():
    graph = import_graph.build(REPO)
    assert graph.cycles() == []
    assert graph.upward() == []
    assert graph.serving_to_lab() == []


def test_function_level_imports_of_project_modules_are_rare_and_explained():
    """Lazy imports are kept for torch (``import visualsearch.embedding`` stays torch-free)
    and for Django's ``AppConfig.ready``; every one sits under a comment or a docstring
    that says why."""
    graph = import_graph.build(REPO)
    lazy = sorted({module for module, _, _ in graph.function_imports})
    assert lazy == ["recommender.apps", "visualsearch.apps", "visualsearch.embedding", "visualsearch.embedding.api"]


def test_the_catalogue_loads_without_visual_search():
    """``shop`` with nothing above it installed: its services, admin, importer and forms work
    on their own (visual search listens to ``shop.signals``; the catalogue never calls it)."""
    script = """
import sys
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                    "django.contrib.sessions", "django.contrib.messages", "shop"],
    DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "unused"}},
    ROOT_URLCONF=[], SHOP_MAX_UPLOAD_BYTES=1, SHOP_MAX_IMAGE_PIXELS=1,
)
django.setup()
import shop.admin, shop.filters, shop.forms, shop.importers, shop.selectors, shop.services
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"visualsearch", "recommender", "storefront", "lab"})
print(loaded)
sys.exit(1 if loaded else 0)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_web_processes_start_without_torch():
    """torch is imported when a process first embeds, not when it starts (about a second and
    300 MB each for web processes and beat, which may never embed)."""
    script = """
import sys, django
django.setup()
import config.urls, visualsearch.tasks, workers.celery
sys.exit(1 if "torch" in sys.modules else 0)
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
