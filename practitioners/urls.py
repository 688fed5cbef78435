from django.urls import include, path

# Everything under /agenda/: the day and week views and their actions, the settings pages, and
# the practitioner's connected apps (integrations).
urlpatterns = [
    path("", include("practitioners.agenda_urls")),
    path("", include("practitioners.settings_urls")),
    path("integrations/", include("integrations.agenda_urls")),
]
