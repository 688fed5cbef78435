from django.urls import path

from patients import views

urlpatterns = [
    path("", views.relative_list, name="relatives"),
    path("add/", views.relative_add, name="relative-add"),
    path("<int:relative_id>/edit/", views.relative_edit, name="relative-edit"),
    path("<int:relative_id>/remove/", views.relative_remove, name="relative-remove"),
]
