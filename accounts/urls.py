from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import security_views, two_factor_views, views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("signup/sent/", views.signup_sent, name="signup-sent"),
    path("verify/<str:token>/", views.verify, name="verify"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    # Second factor
    path("two-factor/verify/", two_factor_views.verify, name="two-factor-verify"),
    path("two-factor/setup/", two_factor_views.setup, name="two-factor-setup"),
    path("two-factor/backup-codes/", two_factor_views.backup_codes, name="two-factor-backup-codes"),
    path("two-factor/replace/", two_factor_views.reset, name="two-factor-reset"),
    path("two-factor/disable/", two_factor_views.disable, name="two-factor-disable"),
    # Security page
    path("security/", security_views.security, name="security"),
    path("security/password/", security_views.password_change, name="password-change"),
    path("security/email/", security_views.email_change, name="email-change"),
    path("security/email/sent/", security_views.email_change_sent, name="email-change-sent"),
    path(
        "email/confirm/<str:token>/",
        security_views.email_change_confirm,
        name="email-change-confirm",
    ),
    path("security/sessions/<str:handle>/end/", security_views.session_end, name="session-end"),
    path(
        "security/sessions/end-others/",
        security_views.sessions_end_others,
        name="sessions-end-others",
    ),
]
