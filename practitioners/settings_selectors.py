"""Reads of the agenda settings pages: whose agenda the actor works on, and what it offers.

No appointment data is read here (hours, absences, reasons, team), so nothing is audited.
Access comes from StaffAccess at every request, like booking.selectors.staff_level: a grant or a
withdrawal counts from the secretary's next page.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _

from accounts.models import Role, User
from audit.actors import Actor
from booking.errors import NotAllowed, NotVisible
from booking.models import Appointment
from practitioners.models import (
    Absence,
    PracticeMember,
    Practitioner,
    StaffAccess,
    StaffAccessChange,
    VisitReason,
    WeeklyHours,
)

UPCOMING_ABSENCES_SHOWN = 100
TEAM_CHANGES_SHOWN = 20


@dataclass(frozen=True)
class AgendaChoice:
    """The agenda a page works on, the actor's level on it, and (for a secretary) the agendas
    they may switch to."""

    practitioner: Practitioner
    level: str
    is_owner: bool
    choices: tuple[Practitioner, ...] = ()

    @property
    def can_manage(self) -> bool:
        return self.level == StaffAccess.Level.MANAGE

    @property
    def query(self) -> str:
        return f"?practitioner={self.practitioner.pk}"

    def ensure_manages(self) -> None:
        if not self.can_manage:
            raise NotAllowed(_("You can see this agenda but not change it."))

    def ensure_owner(self) -> None:
        if not self.is_owner:
            raise NotAllowed(_("Only the practitioner can do this."))


def _requested_id(requested: str | None) -> int | None:
    if not requested:
        return None
    if not requested.isdigit() or len(requested) > 18:
        raise NotVisible(detail="no such agenda")
    return int(requested)


def agenda_choice(*, actor: Actor, requested: str | None) -> AgendaChoice | None:
    """A practitioner works on their own agenda; asking for another's is NotVisible (404).
    A secretary works on one of the agendas they were given, `requested` or the first by name;
    None when they were given none yet."""
    user = actor.user
    wanted = _requested_id(requested)
    if user is None or not user.is_active:
        raise NotVisible(detail="no agenda")
    if user.role == Role.PRACTITIONER:
        own = Practitioner.objects.select_related("practice").filter(user=user).first()
        if own is None or wanted not in (None, own.pk):
            raise NotVisible(detail="agenda of another practitioner")
        return AgendaChoice(practitioner=own, level=StaffAccess.Level.MANAGE, is_owner=True)
    if user.role != Role.SECRETARY:
        raise NotVisible(detail="not practice staff")
    return _secretary_choice(user, wanted)


def _secretary_choice(user: User, wanted: int | None) -> AgendaChoice | None:
    grants = list(
        StaffAccess.objects.filter(user=user)
        .select_related("practitioner__practice")
        .order_by("practitioner__last_name", "practitioner__first_name", "practitioner_id")
    )
    chosen = next((g for g in grants if wanted in (None, g.practitioner_id)), None)
    if chosen is None and (grants or wanted is not None):
        raise NotVisible(detail="agenda not shared with this secretary")
    if chosen is None:
        return None
    return AgendaChoice(
        practitioner=chosen.practitioner,
        level=chosen.level,
        is_owner=False,
        choices=tuple(grant.practitioner for grant in grants),
    )


def weekly_hours_of(practitioner: Practitioner) -> list[WeeklyHours]:
    return list(
        WeeklyHours.objects.filter(practitioner=practitioner)
        .prefetch_related("reasons")
        .order_by("weekday", "start_time", "valid_from", "pk")
    )


def hours_item(practitioner: Practitioner, hours_id: int) -> WeeklyHours | None:
    hours = WeeklyHours.objects.filter(practitioner=practitioner, pk=hours_id)
    return hours.prefetch_related("reasons").first()


def reason_item(practitioner: Practitioner, reason_id: int) -> VisitReason | None:
    return VisitReason.objects.filter(practitioner=practitioner, pk=reason_id).first()


def reasons_of(practitioner: Practitioner) -> list[VisitReason]:
    """Every reason, active first; `has_appointments` tells which ones may be deleted."""
    booked = Appointment.objects.filter(reason=OuterRef("pk"))
    restricting = WeeklyHours.objects.filter(reasons=OuterRef("pk"))
    return list(
        VisitReason.objects.filter(practitioner=practitioner)
        .annotate(has_appointments=Exists(booked), restricts_hours=Exists(restricting))
        .order_by("-active", "position", "pk")
    )


def upcoming_absences(practitioner: Practitioner, *, now: datetime) -> list[Absence]:
    return list(
        Absence.objects.filter(practitioner=practitioner, end__gt=now).order_by("start", "pk")[
            :UPCOMING_ABSENCES_SHOWN
        ]
    )


@dataclass(frozen=True)
class TeamMember:
    user: User
    is_member: bool
    level: str | None  # on this practitioner's agenda

    @property
    def invitation_pending(self) -> bool:
        return self.user.last_login is None


def team_of(practitioner: Practitioner) -> list[TeamMember]:
    """The secretaries of the practice, and anyone else with access to this agenda."""
    levels = dict(
        StaffAccess.objects.filter(practitioner=practitioner).values_list("user_id", "level")
    )
    members = set(
        PracticeMember.objects.filter(practice_id=practitioner.practice_id).values_list(
            "user_id", flat=True
        )
    )
    users = User.objects.filter(pk__in=members | set(levels))
    team = [
        TeamMember(user=user, is_member=user.pk in members, level=levels.get(user.pk))
        for user in users
    ]
    return sorted(team, key=lambda member: member.user.email)  # encrypted: sorted here


def team_changes(practitioner: Practitioner) -> list[StaffAccessChange]:
    """Recent changes to this agenda's access and to the practice's members."""
    return list(
        StaffAccessChange.objects.filter(practice_id=practitioner.practice_id)
        .filter(Q(practitioner=practitioner) | Q(practitioner__isnull=True))
        .select_related("member")
        .order_by("-at", "-pk")[:TEAM_CHANGES_SHOWN]
    )
