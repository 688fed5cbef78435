from django.urls import path

from patients import data_views

urlpatterns = [
    path("", data_views.my_data, name="my-data"),
    path("export.json", data_views.my_data_export, name="my-data-export"),
    path("delete/", data_views.delete_account, name="my-data-delete"),
    path("deleted/", data_views.account_deleted, name="my-data-deleted"),
]
