from django.urls import path

from audit import views
from privacy.views import breach_report

urlpatterns = [
    path("", views.overview, name="audit-overview"),
    path("events/", views.events, name="audit-events"),
    path("events/export.csv", views.export, name="audit-export"),
    path("events/<int:event_id>/", views.event_detail, name="audit-event"),
    path("alerts/", views.alerts, name="audit-alerts"),
    path(
        "alerts/<int:alert_id>/acknowledge/",
        views.alert_acknowledge,
        name="audit-alert-acknowledge",
    ),
    path("breach/", breach_report, name="audit-breach"),
]
