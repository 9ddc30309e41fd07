from django.urls import path

from visualsearch import staff_views, views

app_name = "visualsearch"
urlpatterns = [
    path("shop-the-look/", views.shop_the_look, name="shop_the_look"),
    path("shop-the-look/<uuid:search_id>/", views.look, name="look"),
    path("shop-the-look/<uuid:search_id>/results", views.look_results, name="look_results"),
    path("shop-the-look/<uuid:search_id>/photo.jpg", views.look_photo, name="look_photo"),
    path("staff/models/", staff_views.models_page, name="models"),
    path("staff/models/rollback", staff_views.model_rollback, name="model_rollback"),
    path("staff/models/<str:name>/index", staff_views.model_index, name="model_index"),
    path("staff/models/<str:name>/promote", staff_views.model_promote, name="model_promote"),
]
