"""The sign-in backend: Django's own, refusing credentials that PostgreSQL cannot hold."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend as DjangoModelBackend


class ModelBackend(DjangoModelBackend):
    """Django's ``ModelBackend`` that finds no user for a username or password with a NUL
    character. PostgreSQL refuses NUL in text parameters, so the user lookup would raise
    (a 500) instead of failing the sign-in. Django's forms refuse NUL before they get here;
    HTTP Basic credentials (the API) are decoded from the header and reach the backend as
    sent (found by the schema fuzzer: ``Authorization: Basic`` of ``"\\x00:x"``)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        values = (username, password, *kwargs.values())
        if any(isinstance(value, str) and "\x00" in value for value in values):
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
