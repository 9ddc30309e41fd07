from django.urls import path

from recommender.api import ProductSimilarApi

app_name = "recommender_api"
urlpatterns = [
    path("products/<int:product_id>/similar", ProductSimilarApi.as_view(), name="product_similar"),
]
