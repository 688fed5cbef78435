"""Deleting my account (/me/data/delete/): future appointments cancelled and the practitioners
told, then nothing personal left anywhere in the database, while past appointments stay."""

from datetime import date, timedelta

import pytest
import time_machine
from django.apps import apps
from django.core import mail
from django.db import connection
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import crypto
from accounts.fields import EncryptedTextField
from accounts.models import Role, User, UserSession
from audit.models import AccessEvent, Action
from booking.models import Appointment, WaitlistEntry
from notifications.models import Notification
from patients.models import ERASED_NAME, Patient, Relative
from tests.factories import (
    PASSWORD,
    AppointmentFactory,
    PatientFactory,
    RelativeFactory,
    UserFactory,
    WaitlistEntryFactory,
)

DELETE_URL = "/me/data/delete/"
FIRST_NAME = "Zéphyrine"
LAST_NAME = "Quintavalle-Brisebarre"
EMAIL = "zephyrine.quintavalle@example.test"
PHONE = "06 12 34 98 76"
BIRTH_DATE = date(1971, 3, 14)
CHILD_FIRST_NAME = "Barnabé"
CHILD_LAST_NAME = "Oustric-Pelletan"
LONER_FIRST_NAME = "Philippine"  # a relative never booked for: removed outright
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb")


@pytest.fixture
def account(clinic):
    """A patient with distinctive values, a child, a relative never booked for, a past
    appointment, two future ones (hers and the child's) with a waiting-list entry, a session."""
    user = UserFactory(email=EMAIL)
    patient = PatientFactory(
        user=user,
        first_name=FIRST_NAME,
        last_name=LAST_NAME,
        email=EMAIL,
        phone=PHONE,
        birth_date=BIRTH_DATE,
    )
    child = RelativeFactory(
        managed_by=patient,
        first_name=CHILD_FIRST_NAME,
        last_name=CHILD_LAST_NAME,
        birth_date=date(2015, 7, 2),
    )
    RelativeFactory(managed_by=patient, first_name=LONER_FIRST_NAME, last_name=LAST_NAME)
    booked = {"practitioner": clinic.practitioner, "reason": clinic.reason, "patient": patient}
    past = AppointmentFactory(
        **booked, start=clinic.slot - timedelta(days=20), status=Appointment.Status.DONE
    )
    future = AppointmentFactory(**booked, start=clinic.slot + timedelta(days=2))
    childs = AppointmentFactory(**booked, relative=child, start=clinic.slot + timedelta(days=3))
    WaitlistEntryFactory(appointment=future)
    return user, patient, child, past, [future, childs]


def _login(client, user) -> None:
    assert client.login(username=EMAIL, password=PASSWORD)  # a real session row
    assert UserSession.objects.filter(user=user).exists()


def _delete(client, django_capture_on_commit_callbacks, **data):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(DELETE_URL, data)


def _needles(patient: Patient) -> list[str]:
    return [
        FIRST_NAME,
        LAST_NAME,
        CHILD_FIRST_NAME,
        CHILD_LAST_NAME,
        LONER_FIRST_NAME,
        EMAIL,
        "zephyrine.quintavalle",
        "0612349876",
        "612349876",
        PHONE,
        BIRTH_DATE.isoformat(),
        crypto.blind_index(EMAIL, kind="email"),
        crypto.blind_index(PHONE, kind="phone"),
    ]


def raw_hits(needles: list[str]) -> list[str]:
    """Every text or JSON column of every table of the schema, searched for each needle."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type = ANY(%s)",
            [list(TEXT_TYPES)],
        )
        columns = cursor.fetchall()
        hits = []
        for table, column in columns:
            for needle in needles:
                cursor.execute(
                    f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s',  # noqa: S608
                    [f"%{needle}%"],
                )
                if cursor.fetchone()[0]:
                    hits.append(f"{table}.{column}: {needle}")
    assert len(columns) > 50  # the search really walked the schema
    return hits


def decrypted_hits(needles: list[str]) -> list[str]:
    """Every encrypted field of every model, read through model instances (decrypted)."""
    hits = []
    for model in apps.get_models():
        fields = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if not fields:
            continue
        for row in model._default_manager.all():
            values = [str(getattr(row, name) or "") for name in fields]
            hits += [
                f"{model._meta.label}: {needle}"
                for value in values
                for needle in needles
                if needle.casefold() in value.casefold()
            ]
    return hits


def test_nothing_personal_remains_after_deletion(
    client, account, django_capture_on_commit_callbacks
):
    user, patient, _child, _past, _future = account
    _login(client, user)
    needles = _needles(patient)
    assert raw_hits(needles[-2:])  # the blind indexes are there before, as plain columns
    assert decrypted_hits(needles)

    response = _delete(client, django_capture_on_commit_callbacks, password=PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == "/me/data/deleted/"
    assert raw_hits(needles) == []
    assert decrypted_hits(needles) == []


def test_deletion_cancels_the_future_keeps_the_past_and_tells_the_practitioner(
    client, account, django_capture_on_commit_callbacks
):
    user, patient, child, past, future = account
    _login(client, user)

    _delete(client, django_capture_on_commit_callbacks, password=PASSWORD)

    for appointment in future:
        appointment.refresh_from_db()
        assert appointment.status == Appointment.Status.CANCELLED
        assert appointment.cancelled_by == Appointment.CancelledBy.PATIENT
        assert Notification.objects.filter(
            appointment=appointment,
            kind=Notification.Kind.CANCELLATION,
            recipient=Notification.Recipient.PRACTITIONER,
        ).exists()
    # The practitioner's messages went out; none could reach the erased patient.
    assert {m.to[0] for m in mail.outbox} == {past.practitioner.user.email}
    assert not Notification.objects.filter(
        recipient=Notification.Recipient.PATIENT, status=Notification.Status.SENT
    ).exists()
    past.refresh_from_db()
    assert past.status == Appointment.Status.DONE
    assert not WaitlistEntry.objects.filter(active=True).exists()
    patient.refresh_from_db()
    assert patient.erased_at is not None
    assert (patient.first_name, patient.email, patient.phone, patient.birth_date) == (
        "",
        "",
        "",
        None,
    )
    assert (patient.email_index, patient.phone_index) == (None, None)
    assert patient.full_name == str(ERASED_NAME)
    child.refresh_from_db()  # kept: the child's appointment names it
    assert (child.first_name, child.last_name, child.birth_date) == ("", "", None)
    assert list(Relative.objects.filter(managed_by=patient)) == [child]


def test_deletion_is_audited_by_ids(client, account, django_capture_on_commit_callbacks):
    user, patient, _child, _past, future = account
    _login(client, user)

    _delete(client, django_capture_on_commit_callbacks, password=PASSWORD)

    cancels = AccessEvent.objects.filter(action=Action.CANCEL, actor_user_id=user.pk)
    assert sorted(cancels.values_list("appointment_id", flat=True)) == [a.pk for a in future]
    erasure = AccessEvent.objects.get(detail__startswith="personal data erased")
    assert (erasure.action, erasure.patient_id, erasure.actor_user_id) == (
        Action.UPDATE,
        patient.pk,
        user.pk,
    )


def test_after_deletion_login_is_impossible_and_the_session_is_gone(
    client, account, django_capture_on_commit_callbacks
):
    user, *_ = account
    _login(client, user)

    _delete(client, django_capture_on_commit_callbacks, password=PASSWORD)

    assert client.get("/me/data/").status_code == 302  # logged out
    assert client.get("/me/data/deleted/").status_code == 200
    user.refresh_from_db()
    assert not user.is_active
    assert not user.has_usable_password()
    assert user.email.startswith("deleted-")
    assert user.email.endswith("@invalid")
    assert user.email_index != crypto.blind_index(EMAIL, kind="email")
    assert not UserSession.objects.filter(user=user).exists()
    assert not client.login(username=EMAIL, password=PASSWORD)
    response = client.post("/accounts/login/", {"username": EMAIL, "password": PASSWORD})
    assert response.status_code == 200  # the form again, no session
    assert "_auth_user_id" not in client.session


def test_wrong_password_is_refused_and_nothing_changes(
    client, account, django_capture_on_commit_callbacks
):
    user, patient, _child, _past, future = account
    _login(client, user)

    response = _delete(client, django_capture_on_commit_callbacks, password="not my password")

    assert response.status_code == 200
    assert 'id="id_password_errors"' in response.content.decode()
    patient.refresh_from_db()
    user.refresh_from_db()
    assert (patient.first_name, patient.erased_at, user.is_active) == (FIRST_NAME, None, True)
    assert user.has_usable_password()
    assert all(
        a.status == Appointment.Status.BOOKED
        for a in Appointment.objects.filter(pk__in=[a.pk for a in future])
    )
    assert not AccessEvent.objects.filter(action=Action.CANCEL).exists()


def test_with_two_step_verification_a_code_is_required(
    client, account, otp_login, django_capture_on_commit_callbacks
):
    user, patient, *_ = account
    User.objects.filter(pk=user.pk).update(two_factor_enabled=True)
    device = otp_login(client, User.objects.get(pk=user.pk))
    StaticDevice.objects.create(user=user, name="backup codes", confirmed=True)

    without_code = _delete(client, django_capture_on_commit_callbacks, password=PASSWORD)
    wrong_code = _delete(
        client, django_capture_on_commit_callbacks, password=PASSWORD, code="000000"
    )

    assert without_code.status_code == wrong_code.status_code == 200
    assert Patient.objects.get(pk=patient.pk).erased_at is None
    # Past django-otp's throttling delay after the wrong code.
    with time_machine.travel(timezone.now() + timedelta(minutes=2), tick=False):
        code = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"
        done = _delete(client, django_capture_on_commit_callbacks, password=PASSWORD, code=code)
    assert done.status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not StaticDevice.objects.filter(user=user).exists()
    assert Patient.objects.get(pk=patient.pk).erased_at is not None


def test_an_appointment_too_close_to_cancel_stops_the_deletion(
    client, account, clinic, django_capture_on_commit_callbacks
):
    user, patient, *_ = account
    soon = AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=patient,
        start=clinic.slot - timedelta(hours=20),  # in 5 hours; the notice is 24
    )
    _login(client, user)
    page = client.get(DELETE_URL).content.decode()
    assert "<strong>" in page  # the appointment too close to cancel is flagged

    response = _delete(client, django_capture_on_commit_callbacks, password=PASSWORD)

    assert response.status_code == 409
    assert 'role="alert"' in response.content.decode()  # says nothing was deleted
    patient.refresh_from_db()
    assert (patient.first_name, patient.erased_at) == (FIRST_NAME, None)
    assert (
        Appointment.objects.filter(patient=patient, status=Appointment.Status.BOOKED).count() == 3
    )
    soon.refresh_from_db()
    assert soon.status == Appointment.Status.BOOKED


def test_the_page_lists_what_will_be_cancelled(client, account, django_assert_max_num_queries):
    user, _patient, _child, _past, future = account
    client.force_login(user)

    with django_assert_max_num_queries(15):
        response = client.get(DELETE_URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert str(future[0].practitioner) in page
    assert 'name="password"' in page
    assert 'name="code"' not in page  # no second factor on this account
    listed = AccessEvent.objects.filter(action=Action.LIST, actor_user_id=user.pk)
    assert sorted(listed.values_list("appointment_id", flat=True)) == [a.pk for a in future]


def test_staff_accounts_cannot_be_deleted_here(client, db, otp_login):
    practitioner = UserFactory(role=Role.PRACTITIONER)
    otp_login(client, practitioner)

    assert client.post(DELETE_URL, {"password": PASSWORD}).status_code == 404
    assert User.objects.get(pk=practitioner.pk).is_active
