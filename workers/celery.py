"""The Celery app. Start a worker with ``make worker`` (needs REDIS_URL).

Embedding tasks are routed to the ``embeddings`` queue so that GPU workers scale apart
from the web tier. On a GPU machine run that queue with ``--pool=solo`` (or ``threads``):
CUDA cannot be re-initialised in a forked child, so the prefork pool must not be used
once the parent has touched CUDA -- and with ``solo`` the model loads once per process.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("vitrine")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
