from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    name = "recommender"

    def ready(self) -> None:
        # Importing the receivers connects them; at module level it would load models before
        # the app registry is ready.
        from recommender import signals  # noqa: F401
