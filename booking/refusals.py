from audit.actors import Actor
from audit.services import record_denial
from booking.errors import DomainError


def record_refusal(actor: Actor, exc: DomainError) -> None:
    """Audit a security-relevant refusal. Called by the error handlers, after the service's
    transaction has rolled back, so the event is not rolled back with it."""
    if exc.audited:
        record_denial(actor=actor, appointment_id=exc.appointment_id, detail=exc.code)
