from django.urls import path

from booking import api

urlpatterns = [
    path("specialties/", api.SpecialtyListApi.as_view(), name="specialties"),
    path("practitioners/", api.PractitionerListApi.as_view(), name="practitioners"),
    path(
        "practitioners/<int:practitioner_id>/",
        api.PractitionerDetailApi.as_view(),
        name="practitioner",
    ),
    path(
        "practitioners/<int:practitioner_id>/slots/",
        api.PractitionerSlotsApi.as_view(),
        name="practitioner-slots",
    ),
    path("appointments/", api.AppointmentListCreateApi.as_view(), name="appointments"),
    path(
        "appointments/<int:appointment_id>/",
        api.AppointmentDetailApi.as_view(),
        name="appointment",
    ),
    path(
        "appointments/<int:appointment_id>/cancel/",
        api.AppointmentCancelApi.as_view(),
        name="appointment-cancel",
    ),
    path(
        "appointments/<int:appointment_id>/reschedule/",
        api.AppointmentRescheduleApi.as_view(),
        name="appointment-reschedule",
    ),
    path(
        "appointments/<int:appointment_id>/status/",
        api.AppointmentStatusApi.as_view(),
        name="appointment-status",
    ),
]
