from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from storefront import errors

urlpatterns = [
    path("admin/", admin.site.urls),
    path("favicon.ico", errors.favicon),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI plus static/js/api_docs.js: "Try it out" form fields start empty, not with samples.
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema", template_name="api_docs.html"), name="api-docs"),
    path("api/", include("visualsearch.api_urls")),
    path("api/", include("recommender.api_urls")),
    path("api/", include("visualsearch.duplicates.api")),
    re_path(r"^api/(?P<path>.*)$", errors.api_not_found),  # after every API route: JSON, never an HTML 404
    path("", include("storefront.urls")),
    path("", include("visualsearch.urls")),
    path("", include("visualsearch.duplicates.urls")),
]

handler404 = errors.not_found
handler500 = errors.error


def serve_media(request, path: str):
    # MEDIA_ROOT is read per request (not frozen at import) so tests and tools that
    # repoint it are honoured; serve() refuses paths that escape the folder.
    return serve(request, path, document_root=settings.MEDIA_ROOT)


if settings.SERVE_MEDIA:
    # django.conf.urls.static.static() only works with DEBUG on; the demo and a
    # single-box deployment serve media from Django either way.
    urlpatterns += [re_path(r"^%s(?P<path>.*)$" % settings.MEDIA_URL.lstrip("/"), serve_media)]
