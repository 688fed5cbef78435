"""The FHIR R4 API, mounted at /fhir/r4/ (config/urls.py). Resource paths are case-sensitive
FHIR type names; anything else answers a 404 OperationOutcome rather than an HTML page."""

from django.urls import URLPattern, path, re_path

from integrations.fhir import appointment_views, views

urlpatterns: list[URLPattern] = [
    path("metadata", views.metadata, name="fhir-metadata"),
    path(
        ".well-known/smart-configuration",
        views.smart_configuration,
        name="fhir-smart-configuration",
    ),
    path("Practitioner", views.practitioners, name="fhir-practitioners"),
    path("Practitioner/<str:resource_id>", views.practitioner, name="fhir-practitioner"),
    path("Schedule", views.schedules, name="fhir-schedules"),
    path("Schedule/<str:resource_id>", views.schedule, name="fhir-schedule"),
    path("Slot", views.slots, name="fhir-slots"),
    path("Slot/<str:resource_id>", views.slot, name="fhir-slot"),
    path("Appointment", appointment_views.appointments, name="fhir-appointments"),
    path("Appointment/<str:resource_id>", appointment_views.appointment, name="fhir-appointment"),
    re_path(r"^(?P<path>.*)$", views.unknown, name="fhir-unknown"),
]
