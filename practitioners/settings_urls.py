"""The agenda settings pages, under /agenda/ (DESIGN: /agenda/hours/, /agenda/absences/,
/agenda/reasons/). Every page takes ?practitioner=<id>: the agenda a secretary works on."""

from django.urls import path

from practitioners import settings_views as views

urlpatterns = [
    path("hours/", views.hours, name="agenda-hours"),
    path("hours/<int:hours_id>/", views.hours_edit, name="agenda-hours-edit"),
    path("hours/<int:hours_id>/delete/", views.hours_delete, name="agenda-hours-delete"),
    path("absences/", views.absences, name="agenda-absences"),
    path("absences/<int:absence_id>/delete/", views.absence_delete, name="agenda-absence-delete"),
    path("reasons/", views.reasons, name="agenda-reasons"),
    path("reasons/<int:reason_id>/", views.reason_edit, name="agenda-reason-edit"),
    path("reasons/<int:reason_id>/active/", views.reason_active, name="agenda-reason-active"),
    path("reasons/<int:reason_id>/delete/", views.reason_delete, name="agenda-reason-delete"),
    path("settings/", views.booking_rules, name="agenda-settings"),
    path("team/", views.team, name="agenda-team"),
    path("team/<int:user_id>/access/", views.team_access, name="agenda-team-access"),
    path("team/<int:user_id>/withdraw/", views.team_withdraw, name="agenda-team-withdraw"),
    path("team/<int:user_id>/remove/", views.team_remove, name="agenda-team-remove"),
]
