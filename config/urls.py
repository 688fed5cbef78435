from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from oauth2_provider.views import AuthorizationView, RevokeTokenView, TokenView

from config.views import healthz

urlpatterns = [
    path("", include("booking.urls")),
    path("me/relatives/", include("patients.urls")),
    path("me/access-log/", include("patients.access_log_urls")),
    path("me/data/", include("patients.data_urls")),
    path("agenda/", include("practitioners.urls")),
    path("audit/", include("audit.urls")),
    # First-party apps: authorization code with PKCE for a signed-in user (scope `api`, REST API
    # only); integrations use client credentials at the token endpoint.
    path("oauth/authorize/", AuthorizationView.as_view(), name="oauth-authorize"),
    path("oauth/token/", TokenView.as_view(), name="oauth-token"),
    path("oauth/revoke_token/", RevokeTokenView.as_view(), name="oauth-revoke"),
    path("fhir/r4/", include("integrations.fhir_urls")),
    path("accounts/", include("accounts.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include(("booking.api_urls", "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path(settings.ADMIN_URL, admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
