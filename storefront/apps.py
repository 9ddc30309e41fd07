from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    """The shop's pages: home, listings, product pages. The catalogue itself is ``shop``."""

    name = "storefront"
