import ipaddress
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from django.utils import timezone

from accounts.models import Role
from audit.actors import Actor
from audit.chain import event_mac
from audit.models import AccessEvent, Action


class AppointmentLike(Protocol):
    @property
    def id(self) -> int | None: ...
    @property
    def patient_id(self) -> int | None: ...
    @property
    def practitioner_id(self) -> int | None: ...


class AppointmentRef(NamedTuple):
    """What is known of an appointment that was asked for but not shown (a refusal)."""

    id: int | None
    patient_id: int | None = None
    practitioner_id: int | None = None


def record_access(
    *,
    actor: Actor,
    action: str,
    appointments: Iterable[AppointmentLike] = (),
    detail: str = "",
) -> list[AccessEvent]:
    """Record one access by `actor` to each of `appointments` (one row for an empty result).

    The only way events are written (DESIGN invariant 2). Call it inside the transaction of the
    access it records: if the insert fails, the access fails with it. One bulk insert per call.
    """
    targets: list[AppointmentLike] = list(appointments) or [AppointmentRef(id=None)]
    now = timezone.now()
    ip = _normalized_ip(actor.ip)
    events = [
        AccessEvent(
            occurred_at=now,
            actor_kind=actor.kind,
            actor_user_id=actor.user.pk if actor.user is not None else None,
            actor_role=actor.role,
            actor_label=actor.label,
            integration_id=actor.integration_id,
            on_behalf_of_id=_on_behalf_of(actor, target),
            action=action,
            channel=actor.channel,
            appointment_id=target.id,
            patient_id=target.patient_id,
            practitioner_id=target.practitioner_id,
            request_id=actor.request_id,
            ip=ip,
            user_agent=actor.user_agent,
            detail=detail[:200],
        )
        for target in targets
    ]
    for event in events:
        event.mac = event_mac(event)
    return AccessEvent.objects.bulk_create(events)


def _normalized_ip(ip: str | None) -> str | None:
    # Stored as the database will give it back (PostgreSQL's inet compresses IPv6), so the mac
    # computed now still matches when the event is read for verification.
    if not ip:
        return None
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


BIGINT_MAX = 2**63 - 1


def record_denial(*, actor: Actor, appointment_id: int | None, detail: str) -> None:
    # The id comes from the caller's input: one the column cannot hold names no appointment,
    # and must not make the refusal itself fail.
    if appointment_id is not None and not 0 <= appointment_id <= BIGINT_MAX:
        appointment_id, detail = None, f"{detail} (id out of range)"
    record_access(
        actor=actor,
        action=Action.DENIED,
        appointments=[AppointmentRef(id=appointment_id)],
        detail=detail,
    )


def _on_behalf_of(actor: Actor, target: AppointmentLike) -> int | None:
    # A secretary or an integration acts for the practitioner whose agenda it touches.
    if actor.role == Role.SECRETARY or actor.integration_id is not None:
        return target.practitioner_id
    return None
