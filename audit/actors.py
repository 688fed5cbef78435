"""Who is acting, on which channel, from where: passed to every selector and service."""

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from accounts.models import Role
from audit.models import ActorKind, Channel

if TYPE_CHECKING:
    from accounts.models import User


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str
    channel: str
    user: "User | None" = None
    label: str = ""  # task or command name, integration name
    integration_id: int | None = None
    request_id: str = ""
    ip: str | None = None
    user_agent: str = ""
    scopes: frozenset[str] = frozenset()  # an integration's token scopes (SMART system scopes)

    @property
    def role(self) -> str:
        return self.user.role if self.user is not None else ""

    @property
    def is_patient(self) -> bool:
        return self.role == Role.PATIENT

    @property
    def is_practice_staff(self) -> bool:
        return self.role in (Role.PRACTITIONER, Role.SECRETARY)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_system(self) -> bool:
        return self.kind == ActorKind.SYSTEM

    def with_channel(self, channel: str) -> "Actor":
        return replace(self, channel=channel)


def actor_for(request: Any, *, channel: str = Channel.WEB) -> Actor:
    user = request.user if request.user.is_authenticated else None
    return Actor(
        kind=ActorKind.USER if user else ActorKind.ANONYMOUS,
        channel=channel,
        user=user,
        request_id=getattr(request, "request_id", ""),
        ip=request.META.get("REMOTE_ADDR") or None,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
    )


def system_actor(name: str, *, channel: str = Channel.TASK) -> Actor:
    """The actor of a Celery task or management command, named after it."""
    return Actor(kind=ActorKind.SYSTEM, channel=channel, label=name[:100])
