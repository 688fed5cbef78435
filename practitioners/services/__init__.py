"""Changes to a practitioner's agenda settings and team. Each service owns its transaction.

Who may change what: the practitioner, and secretaries with "manage" on their agenda
(`booking.selectors.staff_level`), change hours, absences and reasons; only the practitioner
changes their booking rules and who may act on their agenda. Appointment data is not touched
here, so nothing is audited as an access; team changes are kept in StaffAccessChange.
"""

from practitioners.services.schedule import (
    BookingRules,
    HoursSpec,
    ReasonSpec,
    add_absence,
    add_visit_reason,
    add_weekly_hours,
    change_visit_reason,
    change_weekly_hours,
    delete_absence,
    delete_visit_reason,
    delete_weekly_hours,
    ensure_manages,
    ensure_owner,
    set_visit_reason_active,
    update_booking_rules,
)
from practitioners.services.team import (
    MemberAdded,
    add_practice_member,
    grant_staff_access,
    record_staff_access_change,
    remove_practice_member,
    withdraw_staff_access,
)

__all__ = [
    "BookingRules",
    "HoursSpec",
    "MemberAdded",
    "ReasonSpec",
    "add_absence",
    "add_practice_member",
    "add_visit_reason",
    "add_weekly_hours",
    "change_visit_reason",
    "change_weekly_hours",
    "delete_absence",
    "delete_visit_reason",
    "delete_weekly_hours",
    "ensure_manages",
    "ensure_owner",
    "grant_staff_access",
    "record_staff_access_change",
    "remove_practice_member",
    "set_visit_reason_active",
    "update_booking_rules",
    "withdraw_staff_access",
]
