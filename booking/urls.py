from django.urls import path

from booking import my_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("practitioners/<slug:slug>/", views.practitioner_page, name="practitioner"),
    path("book/<slug:slug>/", views.book, name="book"),
    # My space
    path("me/appointments/", my_views.my_appointments, name="my-appointments"),
    path(
        "me/appointments/<int:appointment_id>/booked/",
        my_views.appointment_booked,
        name="appointment-booked",
    ),
    path(
        "me/appointments/<int:appointment_id>/reschedule/",
        my_views.reschedule,
        name="appointment-reschedule",
    ),
    path(
        "me/appointments/<int:appointment_id>/calendar.ics",
        my_views.appointment_calendar,
        name="appointment-calendar",
    ),
    # Waiting list
    path(
        "me/appointments/<int:appointment_id>/waitlist/",
        views.waitlist_join,
        name="waitlist-join",
    ),
    path("me/waitlist/offers/<int:offer_id>/", views.waitlist_offer, name="waitlist-offer"),
]
