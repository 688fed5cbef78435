"""Reads of patients: a patient's own profile and relatives, and the patients of a practitioner as
their practice finds them to book on the phone.

Relatives are only ever read through their managing patient, so another patient's relative is
simply not found (404). Practice staff only find patients who already have an appointment with
the practitioner (DESIGN: a practitioner sees "the patients booked in it"), and each patient
shown to them is recorded.
"""

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.crypto import blind_indexes
from accounts.models import Role, User
from audit.actors import Actor
from audit.models import Action
from audit.services import AppointmentRef, record_access
from booking.errors import NotAllowed, NotVisible
from booking.models import Appointment
from booking.selectors import no_show_counts, staff_level, visible_appointments
from patients.models import Patient, Relative
from practitioners.models import Practitioner, StaffAccess

SEARCH_RESULTS = 20
SEARCH_MIN_LENGTH = 2
PHONE_MIN_DIGITS = 6
PHONE_LIKE = re.compile(r"^\+?[\d\s().-]+$")
WORD_SEPARATORS = re.compile("[\\s'\u2019-]+")  # spaces, apostrophes, hyphens


def patient_for(user: User) -> Patient | None:
    """The patient profile of a patient account; None for staff and accounts without one."""
    if user.role != Role.PATIENT:
        return None
    return Patient.objects.filter(user=user).first()


def relatives_of(*, patient: Patient) -> QuerySet[Relative]:
    return patient.relatives.order_by("id")  # type: ignore[attr-defined,no-any-return]


def access_relative(*, patient: Patient, relative_id: int) -> Relative:
    """One of the patient's relatives; NotVisible (404) for anyone else's or an unknown id."""
    relative = relatives_of(patient=patient).filter(pk=relative_id).first()
    if relative is None:
        raise NotVisible(detail="relative not managed by patient")
    return relative


# --- The patients of a practitioner, for their practice -------------------------------------


@dataclass(frozen=True)
class PatientMatch:
    """A patient of the practitioner, the relatives they brought to them, their no-shows."""

    patient: Patient
    relatives: list[Relative]
    no_shows: int


@dataclass(frozen=True)
class PatientSearch:
    matches: list[PatientMatch]
    by_phone: bool
    truncated: bool  # more patients matched than are shown: the query should be narrower


def folded(text: str) -> str:
    """Case- and accent-insensitive form of a name: "Éloïse" and "ELOISE" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()


def looks_like_phone(query: str) -> bool:
    return bool(PHONE_LIKE.match(query.strip())) and (
        sum(char.isdigit() for char in query) >= PHONE_MIN_DIGITS
    )


def _ensure_books_for(actor: Actor, practitioner: Practitioner) -> None:
    level = staff_level(actor, practitioner.pk)
    if level is None:
        raise NotVisible(detail="agenda not visible to actor")
    if level != StaffAccess.Level.MANAGE:
        raise NotAllowed(_("You may view this agenda but not change it."))


def _seen_by(actor: Actor, practitioner: Practitioner) -> QuerySet[Appointment]:
    """The practitioner's appointments the actor may see, whatever their status: a patient once
    booked with them, even cancelled, is one of their patients."""
    return visible_appointments(actor).filter(practitioner=practitioner)


def _relatives_seen(seen: QuerySet[Appointment]) -> list[Relative]:
    return list(
        Relative.objects.filter(pk__in=seen.filter(relative__isnull=False).values("relative_id"))
        .only("pk", "managed_by_id", "crypto_row_id", "first_name", "last_name")
        .order_by("pk")
    )


def _name_matches(query: str, names: Iterable[tuple[int, str]]) -> set[int]:
    words = [word for word in WORD_SEPARATORS.split(folded(query)) if word]
    return {pk for pk, name in names if all(word in name for word in words)}


def _ids_by_name(query: str, seen: QuerySet[Appointment], relatives: list[Relative]) -> list[int]:
    """Patients whose name, or the name of a relative they brought, contains every word of the
    query; sorted by name.

    Names are encrypted with a random nonce (DESIGN invariant 5), so the database cannot search
    them. A blind index of whole names would find exact spellings only ("Lefevre" misses
    "Lefèvre", "Dupont" misses "Dupont-Martin"), and indexes of name fragments would leak enough
    of each name to be attacked by frequency. Instead the names of this practitioner's patients
    only, a bounded set (a few thousand at most), are decrypted here in the request's memory and
    compared case- and accent-insensitively: some microseconds a name, nothing more stored,
    nothing cached. The cost grows with the practitioner's patient list, not the platform's.
    """
    # crypto_row_id: the names decrypt with it (accounts.fields); deferred, it costs a query each.
    patients = Patient.objects.filter(pk__in=seen.values("patient_id")).only(
        "pk", "crypto_row_id", "first_name", "last_name"
    )
    sort_keys = {p.pk: (folded(p.last_name), folded(p.first_name), p.pk) for p in patients}
    own = _name_matches(query, ((pk, f"{key[1]} {key[0]}") for pk, key in sort_keys.items()))
    by_relative = _name_matches(
        query, ((r.pk, folded(f"{r.first_name} {r.last_name}")) for r in relatives)
    )
    # A relative's appointments are booked by the patient who manages them: one of these.
    managers = {r.managed_by_id for r in relatives if r.pk in by_relative}
    return sorted((own | managers) & sort_keys.keys(), key=sort_keys.__getitem__)


def _matches(
    actor: Actor, practitioner: Practitioner, patients: list[Patient], relatives: list[Relative]
) -> list[PatientMatch]:
    counts = no_show_counts(
        actor=actor, practitioner_ids=[practitioner.pk], patient_ids=[p.pk for p in patients]
    )
    return [
        PatientMatch(
            patient=patient,
            relatives=[r for r in relatives if r.managed_by_id == patient.pk],
            no_shows=counts.get((practitioner.pk, patient.pk), 0),
        )
        for patient in patients
    ]


def _record(actor: Actor, practitioner: Practitioner, patients: list[Patient], **kw: str) -> None:
    record_access(
        actor=actor,
        appointments=[
            AppointmentRef(id=None, patient_id=patient.pk, practitioner_id=practitioner.pk)
            for patient in patients
        ],
        **kw,
    )


def _by_name(patients: Iterable[Patient]) -> list[Patient]:
    return sorted(patients, key=lambda p: (folded(p.last_name), folded(p.first_name), p.pk))


def search_patients_of(
    *, actor: Actor, practitioner: Practitioner, query: str, limit: int = SEARCH_RESULTS
) -> PatientSearch:
    """The practitioner's patients found by phone number (blind index) or by name, for staff who
    manage the agenda; each patient shown recorded as a SEARCH (the query itself is not)."""
    _ensure_books_for(actor, practitioner)
    query = query.strip()
    by_phone = looks_like_phone(query)
    if len(query) < SEARCH_MIN_LENGTH:
        return PatientSearch(matches=[], by_phone=by_phone, truncated=False)
    seen = _seen_by(actor, practitioner)
    relatives = _relatives_seen(seen)
    patients = Patient.objects.filter(pk__in=seen.values("patient_id"))
    if by_phone:
        found = _by_name(patients.filter(phone_index__in=blind_indexes(query, kind="phone")))
    else:
        ids = _ids_by_name(query, seen, relatives)
        found = _by_name(patients.filter(pk__in=ids[: limit + 1]))
    shown = found[:limit]
    detail = "by phone" if by_phone else "by name"  # never the query: it is personal data
    _record(actor, practitioner, shown, action=Action.SEARCH, detail=detail)
    return PatientSearch(
        matches=_matches(actor, practitioner, shown, relatives),
        by_phone=by_phone,
        truncated=len(found) > limit,
    )


def access_patient_of(*, actor: Actor, practitioner: Practitioner, patient_id: int) -> PatientMatch:
    """One patient of the practitioner, to book for, recorded as a VIEW; NotVisible (404) for a
    patient who never had an appointment with them, NotAllowed (403) for view-only staff."""
    _ensure_books_for(actor, practitioner)
    seen = _seen_by(actor, practitioner)
    patient = Patient.objects.filter(pk=patient_id, pk__in=seen.values("patient_id")).first()
    if patient is None:
        raise NotVisible(detail="not a patient of this practitioner")
    relatives = [r for r in _relatives_seen(seen) if r.managed_by_id == patient.pk]
    _record(actor, practitioner, [patient], action=Action.VIEW, detail="patient record")
    return _matches(actor, practitioner, [patient], relatives)[0]
