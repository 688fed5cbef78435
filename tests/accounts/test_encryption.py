"""Encryption at rest, complete (DESIGN invariant 5): no plaintext anywhere in the database,
values bound to their table, column and row, and the ORM paths that cannot bind refused."""

from datetime import date

import pytest
from django.db import connection, transaction
from django.test.utils import isolate_apps

from accounts.crypto import DecryptionError, blind_index
from accounts.fields import Sealed
from accounts.models import User
from booking.services import book_appointment
from notifications.models import Notification
from patients.models import Patient, Relative
from tests.factories import PatientFactory, RelativeFactory, UserFactory, make_actor

PASSWORD = "correct horse battery"
FIRST, LAST = "Xanthippe", "Quillembert"
CHILD_FIRST, CHILD_LAST = "Zéphyrine", "Ombredanne"
EMAIL = "xanthippe.quillembert@mailcheck.test"
PHONE = "06 98 76 54 32"
BIRTH = date(1979, 11, 23)
# Every form in which the values could have been written down.
NEEDLES = [
    FIRST,
    LAST,
    CHILD_FIRST,
    CHILD_LAST,
    "xanthippe.quillembert",
    "mailcheck.test",
    "98 76 54",
    "98765432",
    "1979-11-23",
    "23/11/1979",
    "2016-04-17",
]
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb")


def raw_value(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608 - tests
        return cursor.fetchone()[0]


def set_raw(table: str, column: str, pk: int, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [value, pk])  # noqa: S608


def text_columns() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type = ANY(%s) "
            "ORDER BY table_name, column_name",
            [list(TEXT_TYPES)],
        )
        return cursor.fetchall()


def plaintexts_found(needles: list[str], columns: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Needle -> the columns holding it anywhere in their text, case-insensitively."""
    found: dict[str, list[str]] = {needle: [] for needle in needles}
    with connection.cursor() as cursor:
        for table, column in columns:
            cursor.execute(
                f'SELECT n FROM unnest(%s::text[]) AS n WHERE EXISTS (SELECT 1 FROM "{table}" '  # noqa: S608
                f"WHERE \"{column}\"::text ILIKE '%%' || n || '%%')",
                [needles],
            )
            for (needle,) in cursor.fetchall():
                found[needle].append(f"{table}.{column}")
    return found


@pytest.fixture
def person(db) -> Patient:
    user = UserFactory(email=EMAIL, password=PASSWORD)
    return PatientFactory(
        user=user, first_name=FIRST, last_name=LAST, birth_date=BIRTH, phone=PHONE, email=EMAIL
    )


def test_no_table_holds_a_name_email_phone_or_birth_date_in_plaintext(
    clinic, person, client, django_capture_on_commit_callbacks
):
    child = RelativeFactory(
        managed_by=person, first_name=CHILD_FIRST, last_name=CHILD_LAST, birth_date="2016-04-17"
    )
    with django_capture_on_commit_callbacks(execute=True):
        book_appointment(
            actor=make_actor(person.user),
            practitioner=clinic.practitioner,
            reason=clinic.reason,
            start=clinic.slot,
            patient=person,
            relative=child,
        )
    client.post("/accounts/login/", {"username": EMAIL, "password": "wrong password"})
    client.post("/accounts/login/", {"username": EMAIL, "password": PASSWORD})
    columns = text_columns()

    assert Notification.objects.filter(appointment__patient=person).exists()
    assert ("patients_patient", "first_name") in columns
    assert ("django_session", "session_data") in columns
    assert plaintexts_found(NEEDLES, columns) == {needle: [] for needle in NEEDLES}


def test_the_scan_finds_a_value_left_in_plaintext(person):
    """The scan above can fail: a plaintext written around the field is found."""
    set_raw("patients_patient", "first_name", person.pk, f"{FIRST}!")

    found = plaintexts_found([FIRST, LAST], text_columns())

    assert found == {FIRST: ["patients_patient.first_name"], LAST: []}


def test_a_ciphertext_swapped_between_two_rows_does_not_decrypt(db):
    first = PatientFactory(first_name="Anatole", last_name="Ferrand")
    second = PatientFactory(first_name="Bérénice", last_name="Garnier")
    first_token = raw_value("patients_patient", "last_name", first.pk)
    second_token = raw_value("patients_patient", "last_name", second.pk)
    set_raw("patients_patient", "last_name", first.pk, second_token)
    set_raw("patients_patient", "last_name", second.pk, first_token)

    for moved in Patient.objects.filter(pk__in=[first.pk, second.pk]):
        with pytest.raises(DecryptionError) as refused:
            moved.last_name  # noqa: B018 - the read decrypts
        assert "authentication failed" in str(refused.value)
        assert f"pk={moved.pk}" in str(refused.value)
        assert "Ferrand" not in str(refused.value)
        assert "Garnier" not in str(refused.value)
        assert moved.first_name in {"Anatole", "Bérénice"}  # the rest of the row still reads


def test_an_account_email_swapped_between_two_accounts_does_not_decrypt(db):
    first, second = UserFactory(email="one@example.test"), UserFactory(email="two@example.test")
    set_raw("accounts_user", "email", first.pk, raw_value("accounts_user", "email", second.pk))

    with pytest.raises(DecryptionError):
        User.objects.get(pk=first.pk).email  # noqa: B018 - the read decrypts
    assert User.objects.get(pk=second.pk).email == "two@example.test"


def test_a_ciphertext_swapped_between_two_columns_of_one_row_does_not_decrypt(db):
    patient = PatientFactory(first_name="Anatole", last_name="Ferrand")
    first_token = raw_value("patients_patient", "first_name", patient.pk)
    set_raw(
        "patients_patient",
        "first_name",
        patient.pk,
        raw_value("patients_patient", "last_name", patient.pk),
    )
    set_raw("patients_patient", "last_name", patient.pk, first_token)

    moved = Patient.objects.get(pk=patient.pk)
    with pytest.raises(DecryptionError):
        moved.first_name  # noqa: B018 - the read decrypts
    with pytest.raises(DecryptionError):
        moved.last_name  # noqa: B018 - the read decrypts


def test_a_relative_name_moved_to_another_relative_of_the_same_patient_does_not_decrypt(db):
    parent = PatientFactory()
    first = RelativeFactory(managed_by=parent, first_name="Céleste")
    second = RelativeFactory(managed_by=parent, first_name="Dorian")
    token = raw_value("patients_relative", "first_name", first.pk)
    set_raw("patients_relative", "first_name", second.pk, token)

    with pytest.raises(DecryptionError):
        Relative.objects.get(pk=second.pk).first_name  # noqa: B018 - the read decrypts


def test_values_and_values_list_give_sealed_tokens_that_refuse_to_become_text(person):
    name = Patient.objects.values_list("first_name", flat=True).get(pk=person.pk)
    row = Patient.objects.values("last_name", "birth_date").get(pk=person.pk)

    assert isinstance(name, Sealed)
    assert isinstance(row["last_name"], Sealed)
    assert FIRST not in repr(name)
    assert name.token.startswith("v2:")
    with pytest.raises(TypeError, match="without its row"):
        str(name)
    with pytest.raises(TypeError):
        f"{row['birth_date']}"


def test_queryset_update_encrypts_each_row_for_itself_and_follows_with_the_index(db):
    first, second = PatientFactory(last_name="Un"), PatientFactory(last_name="Deux")
    relatives = [RelativeFactory(managed_by=first), RelativeFactory(managed_by=first)]

    changed = Patient.objects.filter(pk__in=[first.pk, second.pk]).update(
        last_name="Commun", phone="07 00 00 00 01"
    )
    first.relatives.update(first_name="Fratrie", birth_date="2018-03-04")

    assert changed == 2
    tokens = [raw_value("patients_patient", "last_name", p.pk) for p in (first, second)]
    assert tokens[0] != tokens[1]
    assert {p.last_name for p in Patient.objects.all()} == {"Commun"}
    found = Patient.objects.filter(phone_index=blind_index("+33700000001", kind="phone"))
    assert set(found) == {first, second}
    assert [(r.first_name, r.birth_date) for r in Relative.objects.order_by("pk")] == [
        ("Fratrie", date(2018, 3, 4))
    ] * len(relatives)


def test_queryset_update_can_blank_a_value_and_its_index(person):
    Patient.objects.filter(pk=person.pk).update(phone="", birth_date=None)

    fresh = Patient.objects.get(pk=person.pk)
    assert (fresh.phone, fresh.phone_index, fresh.birth_date) == ("", None, None)
    assert fresh.last_name == LAST


def test_update_through_a_queryset_that_cannot_encrypt_is_refused(person):
    with pytest.raises(TypeError, match="encrypted for its row"), transaction.atomic():
        Patient._base_manager.filter(pk=person.pk).update(last_name="Autre")

    assert Patient.objects.get(pk=person.pk).last_name == LAST


def test_bulk_update_encrypts_each_row_for_itself(db):
    patients = [PatientFactory(first_name="Avant") for _ in range(3)]
    for n, patient in enumerate(patients):
        patient.first_name = f"Après{n}"
        patient.email = f"apres{n}@example.test"

    Patient.objects.bulk_update(patients, ["first_name", "email", "created_at"])

    fresh = Patient.objects.order_by("pk")
    assert [(p.first_name, p.email) for p in fresh] == [
        (f"Après{n}", f"apres{n}@example.test") for n in range(3)
    ]
    assert fresh[1].email_index == blind_index("APRES1@example.test", kind="email")


def test_bulk_create_binds_each_value_to_its_own_row(db):
    created = Patient.objects.bulk_create(
        Patient(first_name=f"Prénom{n}", last_name="Lot", birth_date=date(2000, 1, n + 1))
        for n in range(5)
    )

    assert len({p.crypto_row_id for p in created}) == 5
    fresh = Patient.objects.filter(pk__in=[p.pk for p in created]).order_by("pk")
    assert [(p.first_name, p.birth_date) for p in fresh] == [
        (f"Prénom{n}", date(2000, 1, n + 1)) for n in range(5)
    ]
    for patient in created:
        token = raw_value("patients_patient", "first_name", patient.pk)
        assert token.startswith("v2:")


def test_saving_changed_values_reencrypts_them_for_the_row(person):
    before = raw_value("patients_patient", "phone", person.pk)
    fresh = Patient.objects.get(pk=person.pk)
    fresh.phone = "07 11 22 33 44"
    fresh.save(update_fields=["phone", "phone_index"])

    again = Patient.objects.get(pk=person.pk)
    assert raw_value("patients_patient", "phone", person.pk) != before
    assert (again.phone, again.first_name) == ("07 11 22 33 44", FIRST)
    assert list(Patient.objects.filter(phone_index=again.phone_index)) == [person]


def test_a_deferred_encrypted_field_loads_and_decrypts_on_first_read(person):
    fresh = Patient.objects.defer("last_name", "crypto_row_id").get(pk=person.pk)

    assert fresh.last_name == LAST
    assert fresh.first_name == FIRST


def test_an_instance_decrypts_each_value_once(person, monkeypatch):
    from accounts import crypto

    calls = []
    real = crypto.decrypt
    monkeypatch.setattr(crypto, "decrypt", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    fresh = Patient.objects.get(pk=person.pk)

    assert [fresh.first_name, fresh.first_name, fresh.full_name] == [
        FIRST,
        FIRST,
        f"{FIRST} {LAST}",
    ]
    assert len(calls) == 2


def test_every_model_with_encrypted_fields_declares_a_row_id():
    from django.core import checks

    assert [e for e in checks.run_checks() if e.id.startswith("accounts.E00")] == []


@isolate_apps("accounts")
def test_a_model_without_row_id_fails_the_system_check():
    from django.db import models

    from accounts.fields import EncryptedTextField

    class Unbound(models.Model):
        secret = EncryptedTextField()

        class Meta:
            app_label = "accounts"

        def __str__(self) -> str:
            return "unbound"

    errors = Unbound._meta.get_field("secret").check()

    assert [e.id for e in errors] == ["accounts.E001", "accounts.E002"]
