"""Impossible to forget (issue #6): every URL is marked audited or exempt, and every audited one
really records an access when used.

The walk covers every URL pattern of the project. Views of libraries (Django's auth and i18n
views, the OpenAPI schema and its docs page, the OAuth2 token endpoint) show no appointment; the
Django admin's appointment pages are audited by booking.admin (tests/booking/
test_appointment_admin.py), and its other pages hold no appointment data (test below).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import Role
from audit.models import AccessEvent
from audit.registry import AUDITED, EXEMPT, coverage_of
from booking.models import Appointment
from tests.factories import (
    AppointmentFactory,
    UserFactory,
    WaitlistEntryFactory,
    WaitlistOfferFactory,
    secretary_of,
)

LIBRARY_MODULES = ("django.", "drf_spectacular.", "oauth2_provider.")
# Models the admin may show without auditing: none of them holds appointment data.
ADMIN_WITHOUT_APPOINTMENTS = {
    "accounts.user",
    "accounts.usersession",
    "otp_totp.totpdevice",
    "otp_static.staticdevice",
    "practitioners.specialty",
    "practitioners.practice",
    "practitioners.practitioner",
    "practitioners.absence",
    "practitioners.staffaccess",
    "practitioners.practicemember",
    "practitioners.staffaccesschange",
    "axes.accessattempt",
    "axes.accessfailurelog",
    "axes.accesslog",
    "auth.group",
    "oauth2_provider.application",
    "oauth2_provider.accesstoken",
    "oauth2_provider.refreshtoken",
    "oauth2_provider.idtoken",
    "oauth2_provider.grant",
    "integrations.integration",
    "integrations.grant",
}


@dataclass(frozen=True)
class Route:
    path: str
    name: str
    callback: Callable[..., Any]


def routes(
    patterns: list[URLPattern | URLResolver] | None = None, prefix: str = ""
) -> Iterator[Route]:
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        path = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":
                continue  # see test_admin_pages_of_appointment_data_are_audited
            namespace = f"{pattern.namespace}:" if pattern.namespace else ""
            for route in routes(pattern.url_patterns, path):
                yield Route(route.path, namespace + route.name, route.callback)
        else:
            yield Route(path, pattern.name or "", pattern.callback)


def is_library(callback: Callable[..., Any]) -> bool:
    view = getattr(callback, "view_class", None) or getattr(callback, "cls", None) or callback
    return view.__module__.startswith(LIBRARY_MODULES)


def own_routes() -> list[Route]:
    return [route for route in routes() if not is_library(route.callback)]


def test_every_url_is_marked_audited_or_exempt():
    unmarked = [
        f"/{route.path} ({route.name})"
        for route in own_routes()
        if coverage_of(route.callback) not in {AUDITED, EXEMPT}
    ]

    assert unmarked == [], "mark these views with @audited or @audit_exempt(reason)"


def test_admin_pages_of_appointment_data_are_audited():
    from booking.admin import AppointmentAdmin

    assert isinstance(admin.site._registry[Appointment], AppointmentAdmin)
    others = {
        model._meta.label_lower
        for model in admin.site._registry
        if model is not Appointment and model._meta.label_lower not in ADMIN_WITHOUT_APPOINTMENTS
    }
    assert others == {
        "notifications.notification"
    }  # audited, tests/notifications/test_outbox_admin.py


# --- Every audited route, used once: it must write at least one access event -----------------


def _appointment(clinic, **fields) -> Appointment:
    fields.setdefault("start", clinic.slot + timedelta(days=2))
    return AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, patient=clinic.patient, **fields
    )


def _as_patient(client, clinic, otp_login) -> None:
    client.force_login(clinic.patient.user)


def _as_practitioner(client, clinic, otp_login) -> None:
    user = UserFactory(role=Role.PRACTITIONER)
    clinic.practitioner.user = user
    clinic.practitioner.save(update_fields=["user"])
    otp_login(client, user)


def _as_secretary(client, clinic, otp_login) -> None:
    otp_login(client, secretary_of(clinic.practitioner))


def _as_integration(client, clinic, otp_login) -> None:
    # Third-party software: an integration the practitioner granted every scope, its bearer
    # token sent with every request of this client.
    from tests.integrations.fhir_support import connect

    client.defaults.update(connect(clinic.practitioner).headers)


def _slot(clinic) -> str:
    return quote(clinic.slot.isoformat())


def _offer(clinic) -> int:
    entry = WaitlistEntryFactory(appointment=_appointment(clinic))
    return WaitlistOfferFactory(entry=entry, start=clinic.slot).pk


# url name -> (how to log in, method, path builder, data builder)
USES: dict[str, tuple[Callable, str, Callable, Callable]] = {
    "book": (
        _as_patient,
        "post",
        lambda c: f"/book/{c.practitioner.slug}/?reason={c.reason.pk}&start={_slot(c)}",
        lambda c: {"for_whom": "me"},
    ),
    "my-appointments": (_as_patient, "get", lambda c: "/me/appointments/", lambda c: {}),
    "appointment-booked": (
        _as_patient,
        "get",
        lambda c: f"/me/appointments/{_appointment(c).pk}/booked/",
        lambda c: {},
    ),
    "appointment-reschedule": (
        _as_patient,
        "get",
        lambda c: f"/me/appointments/{_appointment(c).pk}/reschedule/",
        lambda c: {},
    ),
    "appointment-calendar": (
        _as_patient,
        "get",
        lambda c: f"/me/appointments/{_appointment(c).pk}/calendar.ics",
        lambda c: {},
    ),
    "waitlist-join": (
        _as_patient,
        "post",
        lambda c: f"/me/appointments/{_appointment(c).pk}/waitlist/",
        lambda c: {},
    ),
    "waitlist-offer": (
        lambda client, c, otp: client.force_login(
            WaitlistOfferFactory._meta.model.objects.get().entry.appointment.patient.user
        ),
        "get",
        lambda c: f"/me/waitlist/offers/{_offer(c)}/",
        lambda c: {},
    ),
    "api:appointments": (_as_patient, "get", lambda c: "/api/v1/appointments/", lambda c: {}),
    "api:appointment": (
        _as_patient,
        "get",
        lambda c: f"/api/v1/appointments/{_appointment(c).pk}/",
        lambda c: {},
    ),
    "api:appointment-cancel": (
        _as_patient,
        "post",
        lambda c: f"/api/v1/appointments/{_appointment(c).pk}/cancel/",
        lambda c: {},
    ),
    "api:appointment-reschedule": (
        _as_patient,
        "post",
        lambda c: f"/api/v1/appointments/{_appointment(c).pk}/reschedule/",
        lambda c: {"start": (c.slot + timedelta(hours=1)).isoformat()},
    ),
    "api:appointment-status": (
        _as_practitioner,
        "post",
        lambda c: (
            f"/api/v1/appointments/{_appointment(c, start=c.slot - timedelta(hours=20)).pk}/status/"
        ),
        lambda c: {"status": "arrived"},
    ),
    # The agenda (practitioners.agenda_views, agenda_booking_views).
    "agenda": (
        _as_secretary,
        "get",
        lambda c: f"/agenda/?date={_appointment(c).start.date()}",
        lambda c: {},
    ),
    "agenda-appointment": (
        _as_practitioner,
        "get",
        lambda c: f"/agenda/appointments/{_appointment(c).pk}/",
        lambda c: {},
    ),
    "agenda-appointment-cancel": (
        _as_secretary,
        "post",
        lambda c: f"/agenda/appointments/{_appointment(c).pk}/cancel/",
        lambda c: {"reason": "Empêchement du praticien"},
    ),
    "agenda-appointment-status": (
        _as_practitioner,
        "post",
        lambda c: (
            f"/agenda/appointments/{_appointment(c, start=c.slot - timedelta(hours=20)).pk}/status/"
        ),
        lambda c: {"status": "arrived"},
    ),
    "agenda-appointment-move": (
        _as_secretary,
        "post",
        lambda c: f"/agenda/appointments/{_appointment(c).pk}/move/",
        lambda c: {"start": (c.slot + timedelta(days=2, hours=1)).isoformat()},
    ),
    "agenda-book": (
        _as_secretary,
        "post",
        lambda c: "/agenda/book/",
        lambda c: {
            "practitioner": c.practitioner.pk,
            "date": c.slot.date().isoformat(),
            "reason": c.reason.pk,
            "patient": _appointment(c).patient_id,
            "start": c.slot.isoformat(),
        },
    ),
    "agenda-patient-search": (
        _as_secretary,
        "post",
        lambda c: "/agenda/book/patients/",
        lambda c: {"practitioner": c.practitioner.pk, "q": "Dupont"},
    ),
    # The FHIR API (integrations.fhir.appointment_views), with a bearer token.
    "fhir-appointments": (
        _as_integration,
        "get",
        lambda c: f"/fhir/r4/Appointment?practitioner={_appointment(c).practitioner_id}",
        lambda c: {},
    ),
    "fhir-appointment": (
        _as_integration,
        "get",
        lambda c: f"/fhir/r4/Appointment/{_appointment(c).pk}",
        lambda c: {},
    ),
}


def _as_admin(client, clinic, otp_login) -> None:
    otp_login(client, UserFactory(role=Role.ADMIN))


def _access_event(clinic) -> int:
    from audit.actors import system_actor
    from audit.models import Action
    from audit.services import record_access

    [event] = record_access(
        actor=system_actor("coverage"), action=Action.VIEW, appointments=[_appointment(clinic)]
    )
    return event.pk


def _alert(clinic) -> int:
    from audit.models import Alert

    return Alert.objects.create(kind=Alert.Kind.OTP_FAILURES, actor_user_id=1, event_count=5).pk


USES.update(
    {
        "audit-overview": (_as_admin, "get", lambda c: "/audit/", lambda c: {}),
        "audit-events": (_as_admin, "get", lambda c: "/audit/events/", lambda c: {}),
        "audit-export": (_as_admin, "get", lambda c: "/audit/events/export.csv", lambda c: {}),
        "audit-event": (
            _as_admin,
            "get",
            lambda c: f"/audit/events/{_access_event(c)}/",
            lambda c: {},
        ),
        "audit-alerts": (_as_admin, "get", lambda c: "/audit/alerts/", lambda c: {}),
        "audit-alert-acknowledge": (
            _as_admin,
            "post",
            lambda c: f"/audit/alerts/{_alert(c)}/acknowledge/",
            lambda c: {},
        ),
    }
)
# The breach report page (privacy.views) reads the access log like the audit pages.
USES["audit-breach"] = (_as_admin, "get", lambda c: "/audit/breach/", lambda c: {})


# My data (patients.data_views): the page and the download record an EXPORT, the deletion a
# CANCEL per upcoming appointment and the erasure itself.
def _delete_with_an_upcoming_appointment(clinic) -> str:
    _appointment(clinic)
    return "/me/data/delete/"


USES.update(
    {
        "my-data": (_as_patient, "get", lambda c: "/me/data/", lambda c: {}),
        "my-data-export": (_as_patient, "get", lambda c: "/me/data/export.json", lambda c: {}),
        "my-data-delete": (
            _as_patient,
            "post",
            _delete_with_an_upcoming_appointment,
            lambda c: {"password": "correct horse battery staple"},  # tests.factories.PASSWORD
        ),
    }
)


def test_every_audited_route_has_a_use_below():
    audited = {route.name for route in own_routes() if coverage_of(route.callback) == AUDITED}

    assert audited == set(USES), "add the new audited route to USES"


@pytest.mark.parametrize("name", sorted(USES))
def test_each_audited_route_records_an_access(client, clinic, otp_login, name):
    login, method, path, data = USES[name]
    url = path(clinic)  # objects first: a login may need them
    login(client, clinic, otp_login)
    before = AccessEvent.objects.count()

    response = getattr(client, method)(url, data(clinic))

    assert response.status_code < 500, response.status_code
    assert AccessEvent.objects.count() > before, f"{name} recorded nothing"
