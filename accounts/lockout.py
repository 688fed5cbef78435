"""django-axes glue: lockouts keyed by the email's blind index, never by the plaintext address.

Axes stores the "username" of every failed attempt in its own tables and writes it to the logs;
the account email is personal data (DESIGN invariant 5), so it only ever sees the keyed HMAC.
"""

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest

from accounts import crypto


def lockout_username(request: HttpRequest | None, credentials: dict[str, Any] | None) -> str | None:
    """AXES_USERNAME_CALLABLE: the blind index of the email being tried."""
    credentials = credentials or {}
    typed = credentials.get("username") or credentials.get("email")
    if not typed and request is not None:
        typed = request.POST.get("username")
    return crypto.blind_index(str(typed), kind="email") if typed else None


def describe_client(
    username: str | None, ip_address: str, user_agent: str, path_info: str, request: HttpRequest
) -> str:
    """AXES_CLIENT_STR_CALLABLE: what axes logs; on a successful login it passes the plaintext
    email as `username`, so the username is left out entirely."""
    return f"{{ip_address: {ip_address!r}, path_info: {path_info!r}}}"


class LockoutBackend(AxesStandaloneBackend):
    """Refuses a locked-out email+IP before EmailBackend checks the password.

    Without a request there is no client to lock out (the shell, management commands, the test
    client's `login()`); axes would raise there, so those calls go straight to EmailBackend.
    Every login over HTTP passes the request.
    """

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
