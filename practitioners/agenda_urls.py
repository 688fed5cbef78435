"""The agenda under /agenda/ (mounted by practitioners.urls): every view is an `agenda_view`."""

from django.urls import URLPattern, path

from practitioners import agenda_booking_views, agenda_views

urlpatterns: list[URLPattern] = [
    path("", agenda_views.agenda, name="agenda"),
    path("book/", agenda_booking_views.book, name="agenda-book"),
    path("book/patients/", agenda_booking_views.patient_search, name="agenda-patient-search"),
    path("block/", agenda_views.block_time, name="agenda-block"),
    path(
        "appointments/<int:appointment_id>/",
        agenda_views.appointment_detail,
        name="agenda-appointment",
    ),
    path(
        "appointments/<int:appointment_id>/cancel/",
        agenda_views.appointment_cancel,
        name="agenda-appointment-cancel",
    ),
    path(
        "appointments/<int:appointment_id>/status/",
        agenda_views.appointment_status,
        name="agenda-appointment-status",
    ),
    path(
        "appointments/<int:appointment_id>/move/",
        agenda_views.appointment_move,
        name="agenda-appointment-move",
    ),
]
