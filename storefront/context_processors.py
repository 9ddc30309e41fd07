from django.conf import settings


def storefront(request) -> dict:
    """Values every page's header needs. No queries: this runs on every render, error pages included."""
    return {
        "SITE_NAME": getattr(settings, "SITE_NAME", "Vitrine"),
        # Pre-fills the header search box on the listing it submits to.
        "search_query": request.GET.get("q", "") if request is not None else "",
    }
