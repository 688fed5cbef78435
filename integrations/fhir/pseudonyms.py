"""Per-integration patient pseudonyms (least privilege).

An integration never sees our patient ids. The patient of an appointment is named to it by
HMAC-SHA256(key, integration id | person), truncated to 128 bits: stable across its requests, so
it can tell its appointments of one patient apart and book that patient again, but different for
every integration (two integrations cannot join their data on it) and not reversible without the
key, which stays on the server (`FHIR_PSEUDONYM_KEY`, or one derived from SECRET_KEY).

The person is the one seen: a relative booked by a patient has a pseudonym of their own.
Resolving a pseudonym back (booking that patient again) hashes the ids of the practitioner's
patients and compares; no table maps pseudonyms to ids.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass

from django.conf import settings

from patients.models import Patient, Relative

SYSTEM = "urn:creneau:fhir:patient-pseudonym"
_DERIVATION_CONTEXT = b"creneau/fhir/patient-pseudonym/v1"
_PSEUDONYM = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Person:
    patient: Patient
    relative: Relative | None


def _key() -> bytes:
    configured: str = settings.FHIR_PSEUDONYM_KEY
    if configured:
        return configured.encode()
    return hmac.new(settings.SECRET_KEY.encode(), _DERIVATION_CONTEXT, hashlib.sha256).digest()


def _digest(key: bytes, integration_id: int, subject: str) -> str:
    message = f"{integration_id}|{subject}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def _subject(patient_id: int, relative_id: int | None) -> str:
    return f"relative:{relative_id}" if relative_id is not None else f"patient:{patient_id}"


def pseudonym(*, integration_id: int, patient_id: int, relative_id: int | None = None) -> str:
    return _digest(_key(), integration_id, _subject(patient_id, relative_id))


def resolve(*, integration_id: int, practitioner_id: int, value: str) -> Person | None:
    """The patient (or relative) of the practitioner named by `value` for this integration.

    Only people already booked with this practitioner are candidates: an integration books for
    the practitioner's patients, not for anyone on the platform.
    """
    if not _PSEUDONYM.fullmatch(value):
        return None
    key = _key()
    patient_ids = (
        Patient.objects.filter(appointments__practitioner_id=practitioner_id)
        .values_list("pk", flat=True)
        .distinct()
    )
    for patient_id in patient_ids:
        if hmac.compare_digest(_digest(key, integration_id, _subject(patient_id, None)), value):
            return Person(Patient.objects.get(pk=patient_id), None)
    relatives = (
        Relative.objects.filter(appointments__practitioner_id=practitioner_id)
        .values_list("pk", flat=True)
        .distinct()
    )
    for relative_id in relatives:
        if hmac.compare_digest(_digest(key, integration_id, _subject(0, relative_id)), value):
            relative = Relative.objects.select_related("managed_by").get(pk=relative_id)
            return Person(relative.managed_by, relative)
    return None
