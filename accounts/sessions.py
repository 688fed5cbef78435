"""Session engine (SESSION_ENGINE = "accounts.sessions"): Django's database sessions, plus the
columns a user needs to recognise and end their sessions, and idle expiry by role.

Idle expiry is the database's `expire_date`: every save sets it to now + the idle timeout of the
session's user (SESSION_IDLE_TIMEOUT_STAFF for privileged accounts, SESSION_IDLE_TIMEOUT_PATIENT
for the others), and Django never loads a session past it. `accounts.middleware.SessionMiddleware`
binds the client's IP and user agent to the store and saves an authenticated session again when
its last save is more than ACTIVITY_RESOLUTION old: activity keeps a session alive without a
database write on every request, at the cost of that much precision on the idle timeout.
"""

from datetime import datetime, timedelta
from typing import Any, cast

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.models import User, UserSession, is_privileged

ACTIVITY_RESOLUTION = timedelta(seconds=60)
USER_AGENT_MAX_LENGTH = 300


def session_handle(session_key: str) -> str:
    """A public name for a session, for pages and forms: the key itself is a credential and
    never leaves the cookie."""
    return salted_hmac("accounts.session-handle", session_key).hexdigest()[:32]


def idle_timeout_for(user: Any) -> int:
    """Seconds of inactivity after which a session of `user` ends."""
    if getattr(user, "is_privileged", False):
        return int(settings.SESSION_IDLE_TIMEOUT_STAFF)
    return int(settings.SESSION_IDLE_TIMEOUT_PATIENT)


def _idle_timeout_for_user_id(user_id: int | None) -> int | None:
    if user_id is None:
        return None
    flags = User.objects.filter(pk=user_id).values_list("role", "is_staff", "is_superuser").first()
    if flags is None:
        return None
    role, is_staff, is_superuser = flags
    if is_privileged(role=role, is_staff=is_staff, is_superuser=is_superuser):
        return int(settings.SESSION_IDLE_TIMEOUT_STAFF)
    return int(settings.SESSION_IDLE_TIMEOUT_PATIENT)


def _user_id(data: dict[str, Any]) -> int | None:
    try:
        return int(data[SESSION_KEY])
    except (KeyError, TypeError, ValueError):
        return None


class SessionStore(DatabaseSessionStore):
    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self.client_ip: str | None = None
        self.client_user_agent = ""
        self._idle_timeout: int | None = None
        self._stored: UserSession | None = None
        self._last_saved_at: datetime | None = None

    @classmethod
    def get_model_class(cls) -> type[UserSession]:
        return UserSession

    # --- Called by accounts.middleware.SessionMiddleware ------------------------------------

    def bind_client(self, *, ip: str | None, user_agent: str) -> None:
        self.client_ip = ip or None
        self.client_user_agent = user_agent[:USER_AGENT_MAX_LENGTH]

    def keep_alive(self, *, idle_timeout: int) -> None:
        """Use `idle_timeout` for this session, and have it saved (pushing its expiry back) if
        its last save is older than ACTIVITY_RESOLUTION."""
        self._idle_timeout = idle_timeout
        last = self._last_saved_at
        if last is None or timezone.now() - last >= ACTIVITY_RESOLUTION:
            self.modified = True

    @property
    def last_activity(self) -> datetime | None:
        return self._last_saved_at

    # --- Engine -----------------------------------------------------------------------------

    def get_session_cookie_age(self) -> int:
        return self._idle_timeout or int(settings.SESSION_COOKIE_AGE)

    def _get_session_from_db(self) -> UserSession | None:
        stored = super()._get_session_from_db()  # type: ignore[misc]
        if stored is not None:
            self._stored = stored
            self._last_saved_at = stored.last_activity
        return stored

    async def _aget_session_from_db(self) -> UserSession | None:
        stored = await super()._aget_session_from_db()  # type: ignore[misc]
        if stored is not None:
            self._stored = stored
            self._last_saved_at = stored.last_activity
        return stored

    def create_model_instance(self, data: dict[str, Any]) -> UserSession:
        user_id = _user_id(data)
        if self._idle_timeout is None:
            self._idle_timeout = _idle_timeout_for_user_id(user_id)
        instance = cast(UserSession, super().create_model_instance(data))
        now = timezone.now()
        stored = self._stored
        instance.user_id = user_id  # type: ignore[attr-defined]
        # A store built without a request (the shell, the test client) keeps what it loaded.
        instance.ip = self.client_ip or (stored.ip if stored else None)
        instance.user_agent = self.client_user_agent or (stored.user_agent if stored else "")
        same_row = stored is not None and stored.session_key == instance.session_key
        instance.created_at = stored.created_at if same_row and stored else now
        instance.last_activity = now
        self._last_saved_at = now
        return instance

    async def acreate_model_instance(self, data: dict[str, Any]) -> UserSession:
        # Django's async variant builds the row itself; ours needs the columns above.
        await self._aget_or_create_session_key()  # type: ignore[attr-defined]
        return await sync_to_async(self.create_model_instance)(data)

    def flush(self) -> None:
        # Logout or a login as someone else: the next user's timeout is looked up afresh.
        super().flush()
        self._idle_timeout = None
        self._stored = None
