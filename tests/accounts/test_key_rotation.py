"""Key rotation: `rotate_encryption_key` (field encryption) and `rotate_blind_index` (lookups)."""

import base64
import os
import secrets
from io import StringIO

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection

from accounts import crypto, rotation
from accounts.models import User
from patients.models import Patient, Relative
from tests.factories import PatientFactory, RelativeFactory, UserFactory

PASSWORD = "correct horse battery"


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def key_id_of(encoded: str) -> str:
    return crypto.key_id(base64.urlsafe_b64decode(encoded))


def legacy_token(plaintext: str, *, context: str, key: str) -> str:
    """A v1 token as written before values were bound to their row."""
    nonce = os.urandom(crypto.NONCE_BYTES)
    sealed = AESGCM(base64.urlsafe_b64decode(key)).encrypt(
        nonce, plaintext.encode(), context.encode()
    )
    return f"v1:{key_id_of(key)}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def raw_tokens(table: str, column: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} ORDER BY id")  # noqa: S608 - test tables
        return [row[0] for row in cursor.fetchall()]


def set_raw(table: str, column: str, pk: int, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [value, pk])  # noqa: S608


def read_everything() -> list[object]:
    """Every encrypted value of every row, decrypted (raises if one does not decrypt)."""
    values: list[object] = [user.email for user in User.objects.order_by("pk")]
    for patient in Patient.objects.order_by("pk"):
        values += [patient.first_name, patient.last_name, patient.birth_date, patient.phone]
        values.append(patient.email)
    for relative in Relative.objects.order_by("pk"):
        values += [relative.first_name, relative.last_name, relative.birth_date]
    return values


def rotate(**options: object) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("rotate_encryption_key", stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def keys(settings):  # type: ignore[no-untyped-def]
    """Data written under `old`; then `new` is put first, as an operator would."""
    old, new = new_key(), new_key()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    return old, new


@pytest.fixture
def population(db, keys):  # type: ignore[no-untyped-def]
    patients = [
        PatientFactory(
            first_name=f"Prénom{n}",
            phone=f"06 00 00 00 {n:02d}",
            user__email=f"person{n}@example.test",
            user__password=PASSWORD,
            birth_date=f"19{60 + n}-0{1 + n % 9}-1{n}",
        )
        for n in range(5)
    ]
    RelativeFactory(managed_by=patients[0], first_name="Enfant", birth_date="2015-06-01")
    return patients


def test_after_rotation_and_removal_of_the_old_key_every_row_decrypts(population, keys, settings):
    old, new = keys
    before = read_everything()
    settings.FIELD_ENCRYPTION_KEYS = [new, old]

    out, err = rotate(batch_size=2)
    settings.FIELD_ENCRYPTION_KEYS = [new]

    assert read_everything() == before
    current = f"v2:{key_id_of(new)}:"
    for table, column in [
        ("patients_patient", "last_name"),
        ("patients_relative", "birth_date"),
        ("accounts_user", "email"),
    ]:
        assert all(token.startswith(current) for token in raw_tokens(table, column))
    assert "patients.Patient: 5 rows, 5 re-encrypted" in out
    assert "accounts.User" in err
    assert "rows/s" in err


def test_login_by_email_works_after_rotation_without_the_old_key(
    population, keys, settings, client
):
    old, new = keys
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    rotate()
    settings.FIELD_ENCRYPTION_KEYS = [new]

    assert client.login(email="person3@example.test", password=PASSWORD)
    client.logout()
    response = client.post(
        "/accounts/login/", {"username": "PERSON4@example.test", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(population[4].user.pk)


def test_without_rotation_removing_the_old_key_loses_the_data(population, keys, settings):
    """The counterpart of the tests above: rotation is what makes removal safe."""
    old, new = keys
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    Patient.objects.get(pk=population[0].pk).save()  # one row rewritten by a save
    settings.FIELD_ENCRYPTION_KEYS = [new]

    assert Patient.objects.get(pk=population[0].pk).first_name == "Prénom0"
    with pytest.raises(crypto.DecryptionError):
        read_everything()


def test_v1_values_still_decrypt_and_are_rewritten_bound_to_their_row(db, keys, settings):
    old, new = keys
    patient = PatientFactory(first_name="x", last_name="y")
    user = patient.user
    set_raw(
        "patients_patient",
        "first_name",
        patient.pk,
        legacy_token("Ancienne", context="patients_patient.first_name", key=old),
    )
    set_raw(
        "accounts_user",
        "email",
        user.pk,
        legacy_token("ancien@example.test", context="accounts_user.email", key=old),
    )
    assert Patient.objects.get(pk=patient.pk).first_name == "Ancienne"

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    rotate()
    settings.FIELD_ENCRYPTION_KEYS = [new]

    assert Patient.objects.get(pk=patient.pk).first_name == "Ancienne"
    assert User.objects.get(pk=user.pk).email == "ancien@example.test"
    assert raw_tokens("patients_patient", "first_name")[0].startswith(f"v2:{key_id_of(new)}:")


def test_rotation_under_the_same_key_upgrades_v1_tokens(db, keys):
    old, _new = keys
    patient = PatientFactory(last_name="y")
    token = legacy_token("Héritage", context="patients_patient.last_name", key=old)
    set_raw("patients_patient", "last_name", patient.pk, token)

    out, _err = rotate()

    assert raw_tokens("patients_patient", "last_name")[0].startswith(f"v2:{key_id_of(old)}:")
    assert "patients.Patient: 1 rows, 1 re-encrypted" in out
    assert Patient.objects.get(pk=patient.pk).last_name == "Héritage"


def test_a_second_rotation_rewrites_nothing(population, keys, settings):
    old, new = keys
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    rotate()
    tokens = raw_tokens("patients_patient", "first_name")

    out, _err = rotate()

    assert raw_tokens("patients_patient", "first_name") == tokens
    assert "Done: 0 rows re-encrypted" in out


def test_an_interrupted_rotation_resumes_where_it_stopped(population, keys, settings):
    old, new = keys
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    current = f"v2:{key_id_of(new)}:"

    walk = rotation.rotate_encryption(Patient, batch_size=2)
    assert next(walk).rewritten == 2
    walk.close()  # stopped after one batch

    done = [token.startswith(current) for token in raw_tokens("patients_patient", "first_name")]
    assert done == [True, True, False, False, False]
    out, _err = rotate(batch_size=2)
    settings.FIELD_ENCRYPTION_KEYS = [new]

    assert "patients.Patient: 5 rows, 3 re-encrypted" in out
    assert [p.first_name for p in Patient.objects.order_by("pk")] == [
        f"Prénom{n}" for n in range(5)
    ]


@pytest.mark.django_db(transaction=True)
def test_a_failing_batch_stops_with_one_line_and_keeps_the_batches_before_it(
    keys, settings, monkeypatch
):
    old, new = keys
    for n in range(5):
        PatientFactory(first_name=f"Prénom{n}", user=None)
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    real_write = rotation._write
    writes = []

    def failing_write(*args: object) -> None:
        writes.append(1)
        if len(writes) == 2:
            raise DatabaseError("connection lost\nDETAIL: more")
        real_write(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(rotation, "_write", failing_write)

    with pytest.raises(CommandError) as stopped:
        rotate(batch_size=2)

    assert str(stopped.value) == "rotation stopped: connection lost"
    current = f"v2:{key_id_of(new)}:"
    done = [token.startswith(current) for token in raw_tokens("patients_patient", "first_name")]
    assert done == [True, True, False, False, False]
    monkeypatch.setattr(rotation, "_write", real_write)
    rotate(batch_size=2)
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert len(read_everything()) == 25


def test_a_value_that_does_not_decrypt_stops_rotation_naming_the_row_only(
    population, keys, settings
):
    old, new = keys
    tokens = raw_tokens("patients_patient", "first_name")
    set_raw("patients_patient", "first_name", population[2].pk, tokens[3])  # moved ciphertext
    settings.FIELD_ENCRYPTION_KEYS = [new, old]

    with pytest.raises(CommandError) as stopped:
        rotate()

    message = str(stopped.value)
    assert message.startswith("rotation stopped: patients.Patient.first_name of row pk=")
    assert "\n" not in message
    assert "Prénom" not in message
    assert tokens[3] not in message


def test_check_reports_values_left_under_an_old_key_then_success(population, keys, settings):
    old, new = keys
    settings.FIELD_ENCRYPTION_KEYS = [new, old]

    with pytest.raises(CommandError, match="still hold values"):
        rotate(check=True)
    assert not any(
        t.startswith("v2:" + key_id_of(new)) for t in raw_tokens("accounts_user", "email")
    )

    rotate()
    out, _err = rotate(check=True)
    assert f"All values are under key {key_id_of(new)}" in out


def test_rotation_does_not_touch_blind_indexes(population, keys, settings):
    old, new = keys
    indexes = raw_tokens("patients_patient", "phone_index")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]

    rotate()

    assert raw_tokens("patients_patient", "phone_index") == indexes


# --- Blind index ----------------------------------------------------------------------------


@pytest.fixture
def index_keys(settings):  # type: ignore[no-untyped-def]
    old, new = new_key(), new_key()
    settings.BLIND_INDEX_KEYS = [old]
    return old, new


def test_the_single_key_setting_still_works(db, settings):
    settings.BLIND_INDEX_KEYS = []
    settings.BLIND_INDEX_KEY = new_key()
    user = UserFactory(email="solo@example.test")

    assert User.objects.get_by_natural_key("SOLO@example.test") == user
    assert crypto.index_keys() == (settings.BLIND_INDEX_KEY,)


def test_blind_index_rotation_keeps_login_working_during_and_after(
    db, index_keys, settings, client
):
    old, new = index_keys
    users = [UserFactory(email=f"member{n}@example.test", password=PASSWORD) for n in range(3)]
    patient = PatientFactory(user=users[0], phone="06 55 44 33 22")
    settings.BLIND_INDEX_KEYS = [new, old]

    # New key deployed, nothing recomputed yet: found through the old key's index.
    assert client.login(email="member2@example.test", password=PASSWORD)
    walk = rotation.rotate_index(User, batch_size=1)
    assert next(walk).rewritten == 1
    walk.close()  # interrupted: one user under the new key, two under the old one
    for n, user in enumerate(users):
        assert User.objects.get_by_natural_key(f"Member{n}@example.test") == user
        assert client.login(email=f"member{n}@example.test", password=PASSWORD)
    found = Patient.objects.filter(phone_index__in=crypto.blind_indexes("0655443322", kind="phone"))
    assert list(found) == [patient]

    out = StringIO()
    call_command("rotate_blind_index", batch_size=2, stdout=out, stderr=StringIO())
    settings.BLIND_INDEX_KEYS = [new]

    assert "accounts.User: 3 rows, 2 re-indexed" in out.getvalue()
    assert "patients.Patient: 1 rows, 1 re-indexed" in out.getvalue()
    for n in range(3):
        assert client.login(email=f"member{n}@example.test", password=PASSWORD)
    assert list(
        Patient.objects.filter(phone_index=crypto.blind_index("+33655443322", kind="phone"))
    ) == [patient]
    assert raw_tokens("accounts_user", "email_index") == [
        crypto.blind_index(f"member{n}@example.test", kind="email") for n in range(3)
    ]


def test_without_blind_index_rotation_removing_the_old_key_breaks_login(
    db, index_keys, settings, client
):
    _old, new = index_keys
    UserFactory(email="member@example.test", password=PASSWORD)
    settings.BLIND_INDEX_KEYS = [new]

    assert not client.login(email="member@example.test", password=PASSWORD)


def test_a_new_account_during_index_rotation_is_indexed_with_the_new_key(db, index_keys, settings):
    old, new = index_keys
    settings.BLIND_INDEX_KEYS = [new, old]
    user = UserFactory(email="late@example.test")

    assert user.email_index == crypto.blind_indexes("late@example.test", kind="email")[0]
    out = StringIO()
    call_command("rotate_blind_index", stdout=out, stderr=StringIO())
    assert "accounts.User: 1 rows, 0 re-indexed" in out.getvalue()
