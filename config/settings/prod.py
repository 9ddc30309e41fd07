"""Production: everything from the environment, nothing insecure by default."""

import os

from .base import *  # noqa: F403
from .base import env_bool

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
SERVE_MEDIA = env_bool("SERVE_MEDIA", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
