"""Every FHIR failure is an OperationOutcome with an IssueType code and its HTTP status.

Domain errors of booking.services and booking.selectors map here the way booking.api_errors maps
them for the REST API: not visible → 404 (never 403: another practitioner's ids do not exist for
the integration), taken → 409, refused by a business rule → 422.
"""

from typing import Any

from django.utils.translation import gettext as _

from booking.errors import (
    DomainError,
    InvalidInput,
    InvalidTransition,
    NotAllowed,
    NotVisible,
    SlotNotOffered,
    SlotUnavailable,
    TooLateToCancel,
)


class FhirError(Exception):
    """A refusal of the FHIR layer itself: its status, IssueType code and message."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        code: str = "invalid",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.headers = headers or {}


def not_found() -> FhirError:
    """One answer for what does not exist and what the integration may not see."""
    return FhirError(_("Not found."), status=404, code="not-found")


def forbidden(message: str) -> FhirError:
    return FhirError(message, status=403, code="forbidden")


def unprocessable(message: str, *, code: str = "processing") -> FhirError:
    return FhirError(message, status=422, code=code)


def operation_outcome(message: str, *, code: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": message}],
    }


def domain_error(exc: DomainError) -> FhirError:
    """The FHIR form of a service's refusal."""
    if isinstance(exc, NotVisible):
        return not_found()
    if isinstance(exc, NotAllowed):
        return forbidden(exc.message)
    if isinstance(exc, SlotUnavailable):
        return FhirError(exc.message, status=409, code="conflict")
    if isinstance(exc, SlotNotOffered | TooLateToCancel | InvalidTransition):
        return unprocessable(exc.message, code="business-rule")
    if isinstance(exc, InvalidInput):
        return FhirError(exc.message)
    return FhirError(exc.message, status=exc.status, code="processing")
