"""Reads of account data for its owner."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from accounts.models import User, UserSession
from accounts.sessions import session_handle
from accounts.user_agents import describe_user_agent


@dataclass(frozen=True)
class ActiveSession:
    handle: str
    device: str
    ip: str | None
    signed_in_at: datetime
    last_activity: datetime
    is_current: bool


def active_sessions(*, user: User, current_session_key: str | None) -> list[ActiveSession]:
    """The unexpired sessions of `user`, the current one first, then by latest activity."""
    rows = UserSession.objects.filter(user=user, expire_date__gt=timezone.now()).only(
        "session_key", "ip", "user_agent", "created_at", "last_activity"
    )
    sessions = [
        ActiveSession(
            handle=session_handle(row.session_key),
            device=describe_user_agent(row.user_agent),
            ip=row.ip,
            signed_in_at=row.created_at,
            last_activity=row.last_activity,
            is_current=row.session_key == current_session_key,
        )
        for row in rows
    ]
    sessions.sort(key=lambda s: (not s.is_current, -s.last_activity.timestamp()))
    return sessions
