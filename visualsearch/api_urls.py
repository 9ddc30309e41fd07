from django.urls import path

from visualsearch.api import ImageSearchApi

app_name = "visualsearch_api"
urlpatterns = [
    path("search/image", ImageSearchApi.as_view(), name="search_image"),
]
