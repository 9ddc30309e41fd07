from django.urls import path

from visualsearch import views

app_name = "visualsearch"
urlpatterns = [
    path("shop-the-look/", views.shop_the_look, name="shop_the_look"),
]
