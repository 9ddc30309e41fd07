from django.apps import AppConfig


class VisualsearchConfig(AppConfig):
    name = "visualsearch"
    verbose_name = "Visual search"

    def ready(self) -> None:
        from django.conf import settings

        from visualsearch import signals
        from visualsearch.embedding import configure

        # Cheap: torch is imported only when a model is first loaded.
        configure(
            models_dir=getattr(settings, "VISUALSEARCH_MODELS_DIR", None),
            active_model=settings.VISUALSEARCH_MODEL,
            weights=settings.VISUALSEARCH_WEIGHTS,
            device=settings.VISUALSEARCH_DEVICE,
            backend=getattr(settings, "VISUALSEARCH_BACKEND", None),
            onnx_cache_dir=getattr(settings, "VISUALSEARCH_ONNX_CACHE_DIR", None),
        )
        signals.connect()
