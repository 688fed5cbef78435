from django.urls import path

from booking import views

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("practitioners/<slug:slug>/", views.practitioner_page, name="practitioner"),
    path("book/<slug:slug>/", views.book, name="book"),
    path("me/appointments/", views.my_appointments, name="my-appointments"),
    # Waiting list
    path(
        "me/appointments/<int:appointment_id>/waitlist/",
        views.waitlist_join,
        name="waitlist-join",
    ),
    path("me/waitlist/offers/<int:offer_id>/", views.waitlist_offer, name="waitlist-offer"),
]
