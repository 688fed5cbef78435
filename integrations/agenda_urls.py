"""/agenda/integrations/ (mounted by practitioners.urls): the practitioner's connected apps."""

from django.urls import URLPattern, path

from integrations import views

urlpatterns: list[URLPattern] = [
    path("", views.integrations_page, name="agenda-integrations"),
    path(
        "grants/<int:grant_id>/revoke/",
        views.revoke,
        name="agenda-integrations-revoke",
    ),
]
