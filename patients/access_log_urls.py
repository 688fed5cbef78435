from django.urls import path

from patients import access_log_views

urlpatterns = [
    path("", access_log_views.access_log, name="access-log"),
]
