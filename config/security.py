"""Response headers Django 5.2 does not set itself, and the log filter that keeps personal data
out of the logs (DESIGN invariant 5).

Content-Security-Policy: everything from our own origin, no inline script, no plugin, no
framing. Inline *style attributes* are allowed (the agenda positions its blocks with
`style="top: ..."`), inline `<style>` elements are not: CSP 3 browsers apply `style-src-elem`
to elements and fall back to `style-src` for attributes; older ones apply `style-src` to both.
The Swagger UI page (/api/docs/, drf-spectacular) starts itself with an inline script carrying
the CSRF token and has an inline `<style>`: that one page gets them, and nothing else does.
"""

import logging
import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.debug import SafeExceptionReporterFilter

CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "style-src-elem": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# Swagger UI: its inline bootstrap script and style, and the data: images of its stylesheet.
API_DOCS_POLICY = {
    **CONTENT_SECURITY_POLICY,
    "script-src": "'self' 'unsafe-inline'",
    "style-src-elem": "'self' 'unsafe-inline'",
}
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "browsing-topics",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
)


def policy_header(policy: dict[str, str]) -> str:
    return "; ".join(f"{directive} {sources}" for directive, sources in policy.items())


class SecurityHeadersMiddleware:
    """Content-Security-Policy, Permissions-Policy and Cross-Origin-Resource-Policy on every
    response that does not set its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = policy_header(CONTENT_SECURITY_POLICY)
        self.docs_policy = policy_header(API_DOCS_POLICY)
        self.header = (
            "Content-Security-Policy-Report-Only"
            if getattr(settings, "CSP_REPORT_ONLY", False)
            else "Content-Security-Policy"
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        docs = request.path == reverse("api-docs")
        response.headers.setdefault(self.header, self.docs_policy if docs else self.policy)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


# --- Logs ------------------------------------------------------------------------------------

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Phone numbers as people type them: French 06 12 34 56 78 / 06.12.34.56.78 / 0612345678, and
# international +33 6 12 34 56 78. Dates, times and ids do not start with 0 or + in that shape.
PHONE = re.compile(
    r"(?<![\w.+-])(?:\+\d{1,3}[\s.-]?(?:\(0\)\s?)?\d(?:[\s.-]?\d){5,12}|0\d(?:[\s.-]?\d{2}){4})"
    r"(?![\w])"
)
REDACTED_EMAIL = "[email]"
REDACTED_PHONE = "[phone]"


def redact(text: str) -> str:
    return PHONE.sub(REDACTED_PHONE, EMAIL.sub(REDACTED_EMAIL, text))


class RedactPersonalData(logging.Filter):
    """Defense in depth: code never logs personal data, and should a message or an exception
    still carry an email address or a phone number, this filter blanks it before any handler
    writes the record. The message is formatted here, then frozen with its arguments dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the template only
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            # The handler formats exc_info again when it is set; the redacted text is kept.
            record.exc_info = None
        return True


class NoRequestDataReporterFilter(SafeExceptionReporterFilter):
    """Error reports (the DEBUG page, mail to ADMINS if ever configured) show POST field names,
    never their values: a booking or signup form is personal data from top to bottom."""

    def get_post_parameters(self, request: HttpRequest | None) -> dict[str, str]:
        if request is None:
            return {}
        return dict.fromkeys(request.POST, self.cleansed_substitute)
