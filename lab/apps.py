from django.apps import AppConfig


class LabConfig(AppConfig):
    """Installed for its management commands; it has no models, URLs or signals."""

    name = "lab"
    verbose_name = "Lab (evaluation, training, benchmarks)"
