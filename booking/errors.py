"""Domain errors raised by services and selectors; mapped to HTTP by booking.api_errors (API)
and booking.middleware (pages)."""

from datetime import datetime


class DomainError(Exception):
    code = "error"
    status = 400
    audited = False  # refusals that are security-relevant get a "denied" audit event

    def __init__(
        self, message: str, *, field: str | None = None, appointment_id: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.appointment_id = appointment_id


class NotVisible(DomainError):
    """The object does not exist or the actor may not see it: both answer 404."""

    code = "not_found"
    status = 404
    audited = True

    def __init__(self, *, appointment_id: int | None = None, detail: str = "not visible") -> None:
        super().__init__("Not found.", appointment_id=appointment_id)
        self.detail = detail


class SlotUnavailable(DomainError):
    """The slot is (now) taken by another appointment."""

    code = "slot_taken"
    status = 409

    def __init__(self, start: datetime) -> None:
        super().__init__("This slot has just been taken. Please choose another one.", field="start")
        self.start = start


class SlotNotOffered(DomainError):
    """The start is not one the availability engine offers (outside hours, too soon, ...)."""

    code = "slot_not_offered"


class NotAllowed(DomainError):
    """The actor may see the object (or no object is involved) but may not do this."""

    code = "not_allowed"
    status = 403
    audited = True


class TooLateToCancel(DomainError):
    code = "too_late"


class InvalidTransition(DomainError):
    code = "invalid_transition"


class InvalidInput(DomainError):
    """A request the service refuses on its content (a range ending before it starts, ...)."""

    code = "invalid"
