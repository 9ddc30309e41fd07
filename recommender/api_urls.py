from django.urls import path

from recommender.api import ProductCompleteLookApi, ProductSimilarApi

app_name = "recommender_api"
urlpatterns = [
    path("products/<int:product_id>/similar", ProductSimilarApi.as_view(), name="product_similar"),
    path("products/<int:product_id>/complete-the-look", ProductCompleteLookApi.as_view(), name="product_complete_look"),
]
