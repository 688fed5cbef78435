"""Changes to a practitioner's agenda settings. Each owns its transaction.

Who may change what: the practitioner, and secretaries with "manage" on their agenda
(`booking.selectors.staff_level`). Appointment data is not touched here, so nothing is audited
as an access; the next free slots are refreshed by booking.next_slots after commit.
"""

from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _

from audit.actors import Actor
from booking.errors import InvalidInput, NotAllowed
from booking.models import ACTIVE_STATUSES, Appointment
from booking.selectors import staff_level
from practitioners.models import Absence, Practitioner, StaffAccess


def ensure_manages(actor: Actor, practitioner: Practitioner) -> None:
    if staff_level(actor, practitioner.pk) != StaffAccess.Level.MANAGE:
        raise NotAllowed(_("You may not change this agenda."))


@transaction.atomic
def add_absence(
    *,
    actor: Actor,
    practitioner: Practitioner,
    start: datetime,
    end: datetime,
    label: str = "",
) -> Absence:
    """Block a time range. Refused while active appointments fall inside it: they must be moved
    or cancelled first (with their patients told), never silently left in a closed agenda."""
    ensure_manages(actor, practitioner)
    if start >= end:
        raise InvalidInput(_("The end must come after the start."), field="end")
    booked = Appointment.objects.filter(
        practitioner=practitioner, status__in=ACTIVE_STATUSES, start__lt=end, end__gt=start
    ).count()
    if booked:
        raise InvalidInput(
            _("%(count)d appointment(s) are booked in this range: move or cancel them first.")
            % {"count": booked},
            field="start",
        )
    return Absence.objects.create(
        practitioner=practitioner, start=start, end=end, label=label.strip()[:120]
    )
