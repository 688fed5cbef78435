"""Personal data at rest (DESIGN invariant 5): encrypted columns, blind-index lookups, rotation."""

import base64
import hashlib
import secrets
from datetime import date

import pytest
from django.core.exceptions import FieldError
from django.db import IntegrityError, connection, transaction

from accounts import crypto
from accounts.crypto import DecryptionError, blind_index
from accounts.models import User
from patients.models import Patient, Relative
from tests.factories import PatientFactory, RelativeFactory, UserFactory


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def raw_row(table: str, pk: int) -> str:
    """Every column of one row, as the database holds it, in one lowercase string."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id = %s", [pk])  # noqa: S608 - test tables
        return " ".join(str(value) for value in cursor.fetchone()).lower()


def raw_value(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


@pytest.fixture
def patient(db) -> Patient:
    return PatientFactory(
        first_name="Apolline",
        last_name="Desjardins",
        birth_date=date(1984, 2, 29),
        phone="06 12 34 56 78",
        email="apolline.desjardins@example.test",
        user__email="apolline.desjardins@example.test",
    )


def test_the_database_holds_no_plaintext_of_a_patient(patient):
    row = raw_row("patients_patient", patient.pk)

    for plaintext in [
        "apolline",
        "desjardins",
        "1984-02-29",
        "0612345678",
        "12 34 56",
        "example.test",
    ]:
        assert plaintext not in row
    assert raw_value("patients_patient", "first_name", patient.pk).startswith("v2:")


def test_the_database_holds_no_plaintext_of_an_account_email(patient):
    row = raw_row("accounts_user", patient.user.pk)

    assert "apolline" not in row
    assert "example.test" not in row
    assert raw_value("accounts_user", "email", patient.user.pk).startswith("v2:")


def test_the_database_holds_no_plaintext_of_a_relative(db):
    relative = RelativeFactory(
        first_name="Zéphyrin", last_name="Beaulieu", birth_date=date(2019, 5, 4)
    )

    row = raw_row("patients_relative", relative.pk)

    assert "zéphyrin" not in row
    assert "beaulieu" not in row
    assert "2019-05-04" not in row


def test_encrypted_values_read_back_as_they_were_written(patient):
    fresh = Patient.objects.get(pk=patient.pk)

    assert (fresh.first_name, fresh.last_name) == ("Apolline", "Desjardins")
    assert fresh.birth_date == date(1984, 2, 29)
    assert fresh.phone == "06 12 34 56 78"
    assert User.objects.get(pk=patient.user.pk).email == "apolline.desjardins@example.test"


def test_the_same_value_encrypts_differently_each_time(db):
    first, second = PatientFactory(first_name="Léa"), PatientFactory(first_name="Léa")

    assert raw_value("patients_patient", "first_name", first.pk) != raw_value(
        "patients_patient", "first_name", second.pk
    )


def test_a_ciphertext_copied_to_another_column_does_not_decrypt(patient):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE patients_patient SET last_name = first_name WHERE id = %s", [patient.pk]
        )

    with pytest.raises(DecryptionError):
        Patient.objects.get(pk=patient.pk).last_name  # noqa: B018 - the read decrypts


def test_a_ciphertext_copied_to_another_table_does_not_decrypt(patient):
    relative = RelativeFactory(managed_by=patient)
    token = raw_value("patients_patient", "first_name", patient.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE patients_relative SET first_name = %s WHERE id = %s", [token, relative.pk]
        )

    with pytest.raises(DecryptionError):
        Relative.objects.get(pk=relative.pk).first_name  # noqa: B018 - the read decrypts


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(
            lambda token: token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB"), id="bits"
        ),
        pytest.param(lambda token: "garbage", id="malformed"),
        pytest.param(lambda token: "v9" + token[2:], id="unknown-version"),
        pytest.param(lambda token: "v2:00000000:" + token.split(":", 2)[2], id="unknown-key"),
        pytest.param(lambda token: "v1" + token[2:], id="downgraded-to-v1"),
    ],
)
def test_a_tampered_ciphertext_does_not_decrypt_nor_leak(patient, tamper):
    token = raw_value("patients_patient", "first_name", patient.pk)

    with pytest.raises(DecryptionError) as refused:
        crypto.decrypt(tamper(token), context="patients_patient.first_name")

    assert token not in str(refused.value)
    assert "patients_patient" not in str(refused.value)


def test_rotation_keeps_old_rows_readable_and_writes_with_the_new_key(db, settings):
    old, new = new_key(), new_key()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    patient = PatientFactory(first_name="Gaspard")
    old_token = raw_value("patients_patient", "first_name", patient.pk)

    settings.FIELD_ENCRYPTION_KEYS = [new, old]

    assert Patient.objects.get(pk=patient.pk).first_name == "Gaspard"
    assert crypto.needs_reencryption(old_token)
    patient.save()
    new_token = raw_value("patients_patient", "first_name", patient.pk)
    assert not crypto.needs_reencryption(new_token)
    assert new_token.split(":")[1] != old_token.split(":")[1]


def test_a_removed_key_no_longer_decrypts(db, settings):
    old, new = new_key(), new_key()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    patient = PatientFactory()

    settings.FIELD_ENCRYPTION_KEYS = [new]

    with pytest.raises(DecryptionError):
        Patient.objects.get(pk=patient.pk).first_name  # noqa: B018 - the read decrypts


@pytest.mark.parametrize(
    "lookup",
    [
        {"first_name": "Apolline"},
        {"first_name__iexact": "apolline"},
        {"last_name__icontains": "jard"},
        {"phone__in": ["0612345678"]},
        {"email__startswith": "apolline"},
        {"birth_date": date(1984, 2, 29)},
        {"birth_date__gte": date(1984, 1, 1)},
    ],
)
def test_filtering_an_encrypted_patient_field_is_refused(patient, lookup):
    with pytest.raises(FieldError):
        list(Patient.objects.filter(**lookup))


def test_filtering_an_account_email_directly_is_refused(patient):
    with pytest.raises(FieldError):
        User.objects.filter(email="apolline.desjardins@example.test").exists()


def test_isnull_is_the_one_lookup_allowed_on_an_encrypted_field(patient):
    assert Patient.objects.filter(birth_date__isnull=False).count() == 1
    assert Patient.objects.filter(birth_date__isnull=True).count() == 0


@pytest.mark.parametrize(
    "typed", ["06 12 34 56 78", "0612345678", "+33612345678", "+33 6 12 34 56 78", "0033612345678"]
)
def test_patient_is_found_by_phone_however_it_is_typed(patient, typed):
    PatientFactory(phone="07 00 00 00 00")

    found = Patient.objects.filter(phone_index=blind_index(typed, kind="phone"))

    assert list(found) == [patient]


def test_a_patient_without_phone_has_no_phone_index(db):
    patient = PatientFactory(phone="")

    assert raw_value("patients_patient", "phone_index", patient.pk) is None


def test_the_blind_index_is_keyed(db, settings):
    unkeyed = hashlib.sha256(b"phone:+33612345678").hexdigest()
    first = blind_index("0612345678", kind="phone")

    settings.BLIND_INDEX_KEYS = [new_key()]

    assert first != unkeyed
    assert blind_index("0612345678", kind="phone") != first


def test_an_email_is_unique_whatever_its_case(db):
    UserFactory(email="camille@example.test")

    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(email="Camille@Example.TEST")


def test_filter_by_email_finds_an_account_case_insensitively(db):
    user = UserFactory(email="camille@example.test")

    assert list(User.objects.filter_by_email("  CAMILLE@example.test ")) == [user]


def test_an_account_never_shows_its_email_as_text(patient):
    assert "apolline" not in str(patient.user)
    assert "apolline" not in str(patient)
