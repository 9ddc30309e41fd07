from django.urls import path

from visualsearch.duplicates import views

app_name = "duplicates"
urlpatterns = [
    path("review/duplicates/", views.queue, name="queue"),
    path("review/duplicates/bulk", views.bulk, name="bulk"),
    path("review/duplicates/<int:pk>/confirm", views.confirm, name="confirm"),
    path("review/duplicates/<int:pk>/dismiss", views.dismiss, name="dismiss"),
    path("review/duplicates/<int:pk>/skip", views.skip, name="skip"),
    path("review/duplicates/<int:pk>/reopen", views.reopen, name="reopen"),
]
