"""Creneau settings: one file, every value from the environment.

The defaults are the embedded development setup of `make run` (SQLite, tasks in-process, messages
written under var/). Production sets DEBUG=off and provides the secrets; missing secrets then stop
the process instead of silently generating throwaway ones.
"""

import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CRENEAU_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", default=True)


def dev_secret(name: str, generate: Callable[[], str]) -> str:
    """A secret from the environment; in development, generated once and kept under var/."""
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off.")
    path = VAR_DIR / "secrets" / name.lower()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once (web and worker) must not write different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(generate())
    return path.read_text().strip()


def _new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


SECRET_KEY = dev_secret("SECRET_KEY", lambda: secrets.token_urlsafe(50))
# Comma-separated base64 AES-256 keys, newest first: the first encrypts, all decrypt.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS") or [
    dev_secret("FIELD_ENCRYPTION_KEYS", _new_key)
]
# Blind-index keys, newest first (accounts.crypto); BLIND_INDEX_KEY is the one-key form.
BLIND_INDEX_KEYS = env_list("BLIND_INDEX_KEYS") or [dev_secret("BLIND_INDEX_KEY", _new_key)]
BLIND_INDEX_KEY = BLIND_INDEX_KEYS[0]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # django.contrib.admin, whose default site requires a second factor (OTPAdminSite).
    "accounts.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "audit",
    "practitioners",
    "patients",
    "booking",
    "notifications",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "audit.middleware.RequestIdMiddleware",
    # Django's, for the accounts.sessions engine: client IP/user agent, idle timeout by role.
    "accounts.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # After OTPMiddleware: a session that owes its second factor reaches only the 2FA pages.
    "accounts.middleware.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "booking.middleware.DomainErrorMiddleware",
    # Last: it turns axes' lockout flag into the 429 page.
    "axes.middleware.AxesMiddleware",
]

if not DEBUG:
    # gunicorn serves the collected static files itself; runserver does it in development.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'creneau.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # IMMEDIATE takes SQLite's write lock at BEGIN, so the booking service's check-then-insert is
    # serialized there; PostgreSQL relies on the exclusion constraint instead (DESIGN invariant 1).
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif _db["ENGINE"] == "django.db.backends.postgresql":
    _db["ENGINE"] = "django.db.backends.postgresql"
    if env_bool("DATABASE_POOL", default=True):
        # psycopg 3 pool; persistent connections (CONN_MAX_AGE) must stay off with it.
        _db["CONN_MAX_AGE"] = 0
        _db["OPTIONS"] = {
            "pool": {
                "min_size": int(os.environ.get("DATABASE_POOL_MIN", "2")),
                "max_size": int(os.environ.get("DATABASE_POOL_MAX", "10")),
                "timeout": 10,
            }
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery -------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "creneau",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
# Without Redis, tasks run in the web process (after commit): nothing to install for `make run`.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing happens after a booking has committed: fail fast when Redis is down (the outbox row
# stays pending and the relay sends it later) rather than hold the patient's request.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_BEAT_SCHEDULE = {
    "relay-notifications": {"task": "notifications.tasks.relay_pending", "schedule": 60.0},
    "expire-waitlist-offers": {
        "task": "notifications.tasks.expire_waitlist_offers",
        "schedule": 60.0,
    },
    "refresh-next-slots": {
        "task": "booking.tasks.refresh_expired_next_slots",
        "schedule": 300.0,
    },
}

# --- Notifications --------------------------------------------------------------------------
CRENEAU_BASE_URL = os.environ.get("CRENEAU_BASE_URL", "http://127.0.0.1:8000")
SMS_BACKEND = os.environ.get("SMS_BACKEND", "notifications.sms.FileSmsBackend")
SMS_FILE_PATH = VAR_DIR / "outbox" / "sms"
NOTIFICATIONS_MAX_ATTEMPTS = int(os.environ.get("NOTIFICATIONS_MAX_ATTEMPTS", "5"))
NOTIFICATIONS_RETRY_BASE_SECONDS = int(os.environ.get("NOTIFICATIONS_RETRY_BASE_SECONDS", "30"))
# A send taking longer is presumed dead and handed out again: keep it above the slowest batch.
NOTIFICATIONS_CLAIM_SECONDS = int(os.environ.get("NOTIFICATIONS_CLAIM_SECONDS", "120"))
NOTIFICATIONS_RELAY_GRACE_SECONDS = 120
NOTIFICATIONS_RELAY_LIMIT = 20_000
NOTIFICATIONS_BATCH_SIZE = 100

# --- Auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# The lockout backend comes first: it refuses a locked-out client before the password is checked.
AUTHENTICATION_BACKENDS = ["accounts.lockout.LockoutBackend", "accounts.backends.EmailBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The account email is encrypted; uniqueness is held by its blind index (accounts.User.email_index),
# which the custom backend looks up. Django's check only sees the encrypted column.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]

# --- i18n and time --------------------------------------------------------------------------
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

# --- Static ---------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Session authentication that refuses (403 otp_required) a session owing its second factor.
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api_auth.TwoFactorSessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "booking.api_errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"anon": "120/minute", "user": "600/minute"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Creneau API",
    "DESCRIPTION": "Search practitioners, read free slots, book and manage appointments.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Swagger UI served from our own static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Email ----------------------------------------------------------------------------------
EMAIL_URL = os.environ.get("EMAIL_URL", "")
if EMAIL_URL:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    _email = urlsplit(EMAIL_URL)  # smtp://user:pass@host:port
    EMAIL_HOST = _email.hostname or "localhost"
    EMAIL_PORT = _email.port or 25
    EMAIL_HOST_USER = unquote(_email.username or "")
    EMAIL_HOST_PASSWORD = unquote(_email.password or "")
    EMAIL_USE_TLS = _email.scheme in {"smtp+tls", "submission"}
    EMAIL_USE_SSL = _email.scheme == "smtps"
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "outbox" / "email"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Creneau <no-reply@creneau.local>")

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Off only for plain-HTTP local stacks (docker-compose on localhost); production serves HTTPS.
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Logging: never personal data (DESIGN invariant 5); request ids, not names. ----------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

ADMIN_URL = os.environ.get("ADMIN_URL", "admin/")

# --- Creneau --------------------------------------------------------------------------------
CRENEAU_API_MAX_DAYS = 31
CRENEAU_WAITLIST_OFFER_MINUTES = int(os.environ.get("CRENEAU_WAITLIST_OFFER_MINUTES", "30"))
CRENEAU_WAITLIST_MAX_OFFERS = int(os.environ.get("CRENEAU_WAITLIST_MAX_OFFERS", "5"))

# --- Accounts security ----------------------------------------------------------------------
# Argon2 hashes new passwords; PBKDF2 stays to read (and upgrade on login) older hashes.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
PASSWORD_RESET_TIMEOUT = int(os.environ.get("PASSWORD_RESET_TIMEOUT", str(2 * 3600)))
ACCOUNTS_VERIFICATION_DAYS = int(os.environ.get("ACCOUNTS_VERIFICATION_DAYS", "3"))
# Signup and password-reset submissions per client IP and hour (cache counter).
ACCOUNTS_RATE_LIMIT_PER_HOUR = int(os.environ.get("ACCOUNTS_RATE_LIMIT_PER_HOUR", "10"))
ACCOUNTS_EMAIL_CHANGE_HOURS = int(os.environ.get("ACCOUNTS_EMAIL_CHANGE_HOURS", "24"))

# Sessions live in the database (accounts.UserSession: user, IP, user agent, last activity) and
# end after this many idle seconds: staff (practitioners, secretaries, admins) and patients.
SESSION_ENGINE = "accounts.sessions"
SESSION_IDLE_TIMEOUT_STAFF = int(os.environ.get("SESSION_IDLE_TIMEOUT_STAFF", "1800"))
SESSION_IDLE_TIMEOUT_PATIENT = int(os.environ.get("SESSION_IDLE_TIMEOUT_PATIENT", "86400"))
SESSION_COOKIE_AGE = SESSION_IDLE_TIMEOUT_PATIENT  # anonymous sessions

# Second factor (django-otp, accounts.two_factor): mandatory for staff, opt-in for patients.
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "Creneau")
# Exponential delay after each wrong code: factor x 2^(failures - 1) seconds.
OTP_TOTP_THROTTLE_FACTOR = int(os.environ.get("OTP_THROTTLE_FACTOR", "1"))
OTP_STATIC_THROTTLE_FACTOR = OTP_TOTP_THROTTLE_FACTOR
# Then a hard lock of the second-factor step: this many refused codes in a row lock it for
# OTP_LOCKOUT_SECONDS (429 page).
OTP_LOCKOUT_FAILURES = int(os.environ.get("OTP_LOCKOUT_FAILURES", "5"))
OTP_LOCKOUT_SECONDS = int(os.environ.get("OTP_LOCKOUT_MINUTES", "15")) * 60
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
CELERY_BEAT_SCHEDULE["clear-expired-sessions"] = {
    "task": "accounts.tasks.clear_expired_sessions",
    "schedule": 3600.0,
}

# django-axes: lock login for one email from one IP after repeated failures (its app, middleware
# and backend are in the lists above).
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = 0.25  # hours: 15 minutes
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# A failure while locked must not extend the lock, or an attacker could keep a patient out forever.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_USERNAME_FORM_FIELD = "username"
# Personal data never reaches axes' tables or logs: the blind index stands in for the email, the
# access log (which would store the plaintext on success) is off, and form fields are masked.
AXES_USERNAME_CALLABLE = "accounts.lockout.lockout_username"
AXES_CLIENT_STR_CALLABLE = "accounts.lockout.describe_client"
AXES_DISABLE_ACCESS_LOG = True
AXES_SENSITIVE_PARAMETERS = ["username", "email", "ip_address"]
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_IPWARE_PROXY_COUNT = int(os.environ.get("PROXY_COUNT", "0")) or None

# --- Audit log ------------------------------------------------------------------------------
# Keys the audit chain (HMAC-SHA256): whoever edits the events table cannot recompute the chain
# without it. Keep it out of the database and its backups, like the encryption keys.
AUDIT_CHAIN_KEY = dev_secret("AUDIT_CHAIN_KEY", _new_key)
AUDIT_RETENTION_MONTHS = int(os.environ.get("AUDIT_RETENTION_MONTHS", "12"))
# An event is sealed into the chain after its transaction commits; one still unsealed this long
# after it occurred was never committed by the application: verify_audit_log reports it.
AUDIT_SEAL_GRACE_SECONDS = int(os.environ.get("AUDIT_SEAL_GRACE_SECONDS", "600"))
AUDIT_PARTITIONS_AHEAD_MONTHS = 3
CELERY_BEAT_SCHEDULE["seal-audit-log"] = {"task": "audit.tasks.seal_audit_log", "schedule": 10.0}
CELERY_BEAT_SCHEDULE["detect-audit-alerts"] = {
    "task": "audit.tasks.detect_audit_alerts",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["purge-expired"] = {"task": "privacy.tasks.purge_expired", "schedule": 86400.0}
CELERY_BEAT_SCHEDULE["audit-partitions"] = {
    "task": "audit.tasks.create_audit_partitions",
    "schedule": 6 * 3600.0,
}

# --- Integrations (third-party practitioner software): OAuth2 client credentials, FHIR R4 --------
INSTALLED_APPS += ["oauth2_provider", "integrations"]
OAUTH2_PROVIDER = {
    # Short-lived tokens: a stolen one is worth five minutes, and a suspension takes effect
    # within that time even for a token that was already handed out (tokens are also revoked).
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(os.environ.get("OAUTH_TOKEN_SECONDS", "300")),
    # First-party apps (authorization code + PKCE) renew their 5-minute tokens with a refresh
    # token, rotated on use, refused (with its whole family) when replayed, gone after 14 days.
    "REFRESH_TOKEN_EXPIRE_SECONDS": 14 * 24 * 3600,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "SCOPES": {
        "system/Slot.read": "Free slots and schedules",
        "system/Appointment.read": "Appointments (patients as pseudonyms)",
        "system/Appointment.write": "Book and cancel appointments",
        "system/Patient.read": "Names and phone numbers of booked patients",
        "api": "Use the Creneau REST API on your behalf (first-party apps)",
    },
    "DEFAULT_SCOPES": ["system/Slot.read"],
    "PKCE_REQUIRED": True,
    # Integrations: client credentials and system scopes only, active ones only; first-party
    # apps: authorization code and the `api` scope only (integrations/oauth_validator.py).
    "OAUTH2_VALIDATOR_CLASS": "integrations.oauth_validator.IntegrationOAuth2Validator",
    # RFC 9700: tokens are stored as their SHA-256 only (a database dump holds no usable token),
    # never accepted in a query string; no implicit or password grant, no "plain" PKCE.
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
}
# django-oauth-toolkit's own models, named so that migrations can point at them.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"  # noqa: S105 - a model
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"  # noqa: S105
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"  # noqa: S105
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"

# Quotas per integration (integrations/quotas.py; the limits are fields of each Integration).
# Counted in Redis when REDIS_URL is set (falling back to the database if Redis is down), in the
# database otherwise; "database" forces the latter.
INTEGRATIONS_QUOTA_BACKEND = os.environ.get(
    "INTEGRATIONS_QUOTA_BACKEND", "redis" if REDIS_URL else "database"
)
INTEGRATIONS_QUOTA_REDIS_URL = os.environ.get("INTEGRATIONS_QUOTA_REDIS_URL", REDIS_URL)
INTEGRATIONS_QUOTA_KEY_PREFIX = "creneau:quota"
# Harvest detection (integrations/detection.py): see the rules there.
INTEGRATIONS_HARVEST = {
    # Distinct patients in the last hour above FACTOR x the integration's median active hour
    # of the last BASELINE_DAYS (at least FLOOR), once it has BASELINE_MIN_HOURS of history.
    "BASELINE_DAYS": 14,
    "BASELINE_MIN_HOURS": 24,
    "BASELINE_FACTOR": 3,
    "FLOOR": int(os.environ.get("INTEGRATIONS_HARVEST_FLOOR", "100")),
    # Walking ids: in WALK_MINUTES, WALK_MIN_IDS appointments read one by one with mostly
    # consecutive ids, or WALK_MIN_REFUSALS refused ids (404s).
    "WALK_MINUTES": 15,
    "WALK_MIN_IDS": 20,
    "WALK_CONSECUTIVE_SHARE": 0.6,
    "WALK_MIN_REFUSALS": 30,
    # A client refused for its patients quota this many times in an hour is not syncing.
    "QUOTA_REFUSALS": 5,
}
CELERY_BEAT_SCHEDULE["detect-harvesting"] = {
    "task": "integrations.tasks.detect_harvesting",
    "schedule": 300.0,
}

# REST API (/api/v1/, booking/api_base.py): first-party bearer tokens next to the session, and
# per-client rates; an empty rate turns that throttle off (benchmarks).
API_ANONYMOUS_RATE = os.environ.get("API_ANONYMOUS_RATE", "120/minute") or None
API_USER_RATE = os.environ.get("API_USER_RATE", "600/minute") or None
# The OpenAPI schema (/api/schema/) describes the REST API; the FHIR API describes itself
# (GET /fhir/r4/metadata).
SPECTACULAR_SETTINGS["PREPROCESSING_HOOKS"] = ["booking.api_base.rest_api_only"]

# --- FHIR API (integrations/fhir/) -------------------------------------------------------------
# Keys the per-integration patient pseudonyms (integrations/fhir/pseudonyms.py). Set it in
# production and keep it: a new key gives every patient a new pseudonym, and integrations lose
# the link to the patients they booked. Empty: derived from SECRET_KEY (development).
FHIR_PSEUDONYM_KEY = os.environ.get("FHIR_PSEUDONYM_KEY", "").strip()
# The widest Slot search window, in days.
FHIR_MAX_SLOT_DAYS = int(os.environ.get("FHIR_MAX_SLOT_DAYS", "31"))

# --- Privacy (GDPR) -------------------------------------------------------------------------
# purge_expired: patient accounts with neither a login nor an appointment for this long are
# erased (patients.gdpr), after a warning email this many days before.
ACCOUNT_INACTIVE_DAYS = int(os.environ.get("ACCOUNT_INACTIVE_DAYS", str(3 * 365)))
ACCOUNT_INACTIVE_WARNING_DAYS = int(os.environ.get("ACCOUNT_INACTIVE_WARNING_DAYS", "30"))
# Sent, failed and cancelled outbox rows older than this go (notifications.retention).
NOTIFICATION_RETENTION_DAYS = int(os.environ.get("NOTIFICATION_RETENTION_DAYS", "90"))

# --- Hardening (production headers, cookies, error pages, logs; privacy app) -----------------
# `manage.py check --deploy` is clean with DEBUG off. Local plain-HTTP stacks (docker-compose on
# localhost) turn SECURE_SSL_REDIRECT and SECURE_COOKIES off; HSTS is only ever sent over HTTPS.
INSTALLED_APPS += ["privacy"]
# Content-Security-Policy, Permissions-Policy, CORP (config/security.py); after Django's own.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "config.security.SecurityHeadersMiddleware",
)
CSP_REPORT_ONLY = env_bool("CSP_REPORT_ONLY", default=False)
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# No JavaScript of ours reads the CSRF cookie (forms carry the token); Swagger UI reads the token
# from its page, not the cookie.
CSRF_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    # Preloading commits every subdomain to HTTPS for months: an operator who opts out says so,
    # and the deploy check then stays quiet about it.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS += ["security.W021"]
    # RFC 9700: https redirect URIs only, and the `iss` parameter in authorization responses.
    OAUTH2_PROVIDER["ALLOWED_REDIRECT_URI_SCHEMES"] = env_list(
        "OAUTH_REDIRECT_URI_SCHEMES", "https"
    )
    OAUTH2_PROVIDER["COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS"] = True
# Error reports never show POST values; every log line goes through the redaction filter, and
# Django's loggers go to that one handler (not to their own console or mail handlers).
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.security.NoRequestDataReporterFilter"
LOGGING["filters"] = {"redact": {"()": "config.security.RedactPersonalData"}}
LOGGING["handlers"]["console"]["filters"] = ["redact"]  # type: ignore[index]
LOGGING["loggers"].update(  # type: ignore[attr-defined]
    {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
    }
)
# Data protection officer, named in breach notifications and the article 34 messages.
DPO_CONTACT = os.environ.get("DPO_CONTACT", "")
