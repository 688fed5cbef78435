"""The CapabilityStatement (`GET metadata`) and the SMART configuration: public, so a client can
discover the token endpoint, the scopes and what each resource supports before it holds a token."""

from typing import Any

from django.utils import timezone

from integrations.fhir.params import DEFAULT_COUNT, MAX_COUNT
from integrations.fhir.pipeline import FHIR_JSON, JSON_PATCH
from integrations.fhir.resources import instant
from integrations.scopes import (
    ALL_SCOPES,
    APPOINTMENT_READ,
    APPOINTMENT_WRITE,
    PATIENT_READ,
    SLOT_READ,
)

SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICES = "http://terminology.hl7.org/CodeSystem/restful-security-service"
PAGING = (
    f"Results are pages of _count entries (default {DEFAULT_COUNT}, at most {MAX_COUNT}); "
    "follow the Bundle's next link. Unknown search parameters are refused (400)."
)

# (type, interactions, search parameters (name, type, documentation), documentation)
RESOURCES: tuple[tuple[str, tuple[str, ...], tuple[tuple[str, str, str], ...], str], ...] = (
    (
        "Practitioner",
        ("read", "search-type"),
        (
            ("_id", "token", "Practitioner ids, comma-separated."),
            ("identifier", "token", "IdNat_PS: [system|]8 followed by the RPPS number."),
        ),
        "The practitioners who granted this integration a scope its token carries.",
    ),
    (
        "Schedule",
        ("read", "search-type"),
        (("actor", "reference", "Practitioner/{id}."),),
        f"One Schedule per practitioner and visit reason. Needs {SLOT_READ}.",
    ),
    (
        "Slot",
        ("read", "search-type"),
        (
            ("schedule", "reference", "Schedule/{id}: required."),
            ("start", "date", "ge/gt/lt/le/eq; a window of at most 31 days (default 7)."),
            ("status", "token", "free only: only free slots are listed."),
        ),
        f"Free slots, ids stable across searches. Needs {SLOT_READ}.",
    ),
    (
        "Appointment",
        ("read", "search-type", "create", "update", "patch"),
        (
            ("practitioner", "reference", "Practitioner/{id}."),
            ("date", "date", "The start: ge/gt/lt/le/eq, dates in the practice's timezone."),
            ("status", "token", "booked, arrived, fulfilled, noshow or cancelled."),
        ),
        f"Search and read need {APPOINTMENT_READ}. Create (book) needs {APPOINTMENT_WRITE}: "
        "status booked, one slot reference from the Slot search, one Patient participant by "
        "the reference this API gave; 409 when the slot is taken. Update and patch only cancel "
        f"(status cancelled: PUT the resource, or PATCH {JSON_PATCH} replacing /status) and "
        f"need {APPOINTMENT_WRITE} and {APPOINTMENT_READ}. The patient is a pseudonymous "
        f"reference, per integration; with {PATIENT_READ} a contained Patient adds the name "
        "and phone number.",
    ),
)


def _resource(
    kind: str, interactions: tuple[str, ...], params: tuple[tuple[str, str, str], ...], doc: str
) -> dict[str, Any]:
    return {
        "type": kind,
        "documentation": f"{doc} {PAGING}" if "search-type" in interactions else doc,
        "interaction": [{"code": code} for code in interactions],
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": False,
        "searchParam": [
            {"name": name, "type": kind_, "documentation": text} for name, kind_, text in params
        ],
    }


def capability_statement(*, base: str, token_url: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(timezone.now()),
        "publisher": "Creneau",
        "kind": "instance",
        "software": {"name": "Creneau"},
        "implementation": {"description": "Creneau FHIR R4 API", "url": base},
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        "patchFormat": [JSON_PATCH],
        "rest": [
            {
                "mode": "server",
                "documentation": "Bearer tokens from the token endpoint (OAuth2 client "
                f"credentials), with SMART system scopes: {', '.join(ALL_SCOPES)}.",
                "security": {
                    "cors": False,
                    "service": [
                        {"coding": [{"system": SECURITY_SERVICES, "code": "SMART-on-FHIR"}]}
                    ],
                    "extension": [
                        {
                            "url": SMART_OAUTH_URIS,
                            "extension": [{"url": "token", "valueUri": token_url}],
                        }
                    ],
                },
                "resource": [_resource(*resource) for resource in RESOURCES],
            }
        ],
    }


def smart_configuration(*, token_url: str) -> dict[str, Any]:
    """SMART App Launch's discovery document, for backend services (client credentials)."""
    return {
        "token_endpoint": token_url,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": list(ALL_SCOPES),
        "capabilities": ["client-confidential-symmetric"],
    }
