from django.urls import include, path

# Everything under /agenda/: the day and week views and their actions, then the settings pages.
urlpatterns = [
    path("", include("practitioners.agenda_urls")),
    path("", include("practitioners.settings_urls")),
]
