from audit.actors import actor_for
from audit.models import AccessEvent
from booking.services import book_appointment
from audit.actors import Actor
from audit.models import ActorKind, Channel


def test_patient_books_a_free_slot(clinic):
    actor = Actor(kind=ActorKind.USER, channel=Channel.API, user=clinic.patient.user)
    appointment = book_appointment(
        actor=actor,
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        start=clinic.slot,
        patient=clinic.patient,
    )
    assert appointment.end - appointment.start == clinic.reason.duration
    assert AccessEvent.objects.filter(appointment_id=appointment.pk, action="create").count() == 1
