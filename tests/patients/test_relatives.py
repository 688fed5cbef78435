"""My relatives: list, add, edit, remove; only the patient's own."""

from datetime import date, timedelta

import pytest

from audit.models import AccessEvent, Action
from booking.models import Appointment
from patients.models import Relative
from tests.factories import AppointmentFactory, PatientFactory, RelativeFactory


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def patient_client(client, clinic):
    client.force_login(clinic.patient.user)
    return client


def test_relatives_lists_only_mine(patient_client, clinic):
    mine = RelativeFactory(managed_by=clinic.patient, first_name="Léa")
    RelativeFactory(managed_by=PatientFactory(), first_name="Inconnu")

    response = patient_client.get("/me/relatives/")

    assert response.status_code == 200
    assert response.context["relatives"] == [mine]
    html = response.content.decode()
    assert "Léa" in html
    assert "Inconnu" not in html
    assert f'href="/me/relatives/{mine.pk}/edit/"' in html


def test_adding_a_relative(patient_client, clinic):
    response = patient_client.post(
        "/me/relatives/add/",
        {
            "first_name": " Jules ",
            "last_name": "Martin",
            "birth_date": "2019-04-03",
            "relationship": "child",
        },
        follow=True,
    )

    relative = Relative.objects.get()
    assert response.redirect_chain == [("/me/relatives/", 302)]
    assert (relative.managed_by, relative.first_name, relative.birth_date) == (
        clinic.patient,
        "Jules",
        date(2019, 4, 3),
    )
    assert "Jules Martin has been added." in response.content.decode()


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"first_name": "Jules", "last_name": "Martin", "birth_date": "not a date"},
        {"first_name": "Jules", "last_name": "Martin", "birth_date": "2099-01-01"},
        {"first_name": "x" * 500, "last_name": "Martin", "birth_date": "2019-04-03"},
        {"first_name": "J", "last_name": "M", "birth_date": "2019-04-03", "relationship": "cat"},
    ],
)
def test_adding_a_relative_with_bad_data_is_a_form_error(patient_client, clinic, data):
    response = patient_client.post("/me/relatives/add/", data)

    assert response.status_code == 200
    assert response.context["form"].errors
    assert 'aria-invalid="true"' in response.content.decode()
    assert not Relative.objects.exists()


def test_add_form_has_labelled_fields(patient_client, clinic):
    html = patient_client.get("/me/relatives/add/").content.decode()

    for field in ("first_name", "last_name", "birth_date", "relationship"):
        assert f'<label for="id_{field}"' in html


def test_editing_a_relative(patient_client, clinic):
    relative = RelativeFactory(managed_by=clinic.patient, first_name="Léa")

    form = patient_client.get(f"/me/relatives/{relative.pk}/edit/")
    response = patient_client.post(
        f"/me/relatives/{relative.pk}/edit/",
        {
            "first_name": "Léonie",
            "last_name": "Durand",
            "birth_date": "2018-01-02",
            "relationship": "child",
        },
    )

    relative.refresh_from_db()
    assert 'value="Léa"' in form.content.decode()
    assert response.status_code == 302
    assert (relative.first_name, relative.last_name) == ("Léonie", "Durand")


def test_removing_a_relative(patient_client, clinic):
    relative = RelativeFactory(managed_by=clinic.patient)

    confirm = patient_client.get(f"/me/relatives/{relative.pk}/remove/")
    response = patient_client.post(f"/me/relatives/{relative.pk}/remove/", follow=True)

    assert confirm.status_code == 200
    assert response.redirect_chain == [("/me/relatives/", 302)]
    assert not Relative.objects.exists()
    assert "has been removed" in response.content.decode()


def test_removing_a_relative_with_an_upcoming_appointment_is_refused(patient_client, clinic):
    relative = RelativeFactory(managed_by=clinic.patient)
    AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=clinic.patient,
        relative=relative,
        start=clinic.slot,
    )

    response = patient_client.post(f"/me/relatives/{relative.pk}/remove/", follow=True)

    assert Relative.objects.filter(pk=relative.pk).exists()
    assert "has upcoming appointments" in response.content.decode()


def test_removing_a_relative_with_past_appointments_is_refused(patient_client, clinic):
    relative = RelativeFactory(managed_by=clinic.patient)
    AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=clinic.patient,
        relative=relative,
        start=clinic.slot - timedelta(days=30),
        status=Appointment.Status.DONE,
    )

    response = patient_client.post(f"/me/relatives/{relative.pk}/remove/", follow=True)

    assert Relative.objects.filter(pk=relative.pk).exists()
    assert "has past appointments" in response.content.decode()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/me/relatives/{pk}/edit/"),
        ("post", "/me/relatives/{pk}/edit/"),
        ("get", "/me/relatives/{pk}/remove/"),
        ("post", "/me/relatives/{pk}/remove/"),
    ],
)
def test_another_patients_relative_answers_404_on_every_url(patient_client, clinic, method, path):
    theirs = RelativeFactory(managed_by=PatientFactory(), first_name="Inconnu")
    data = {"first_name": "Pirate", "last_name": "X", "birth_date": "2019-04-03"}

    response = getattr(patient_client, method)(
        path.format(pk=theirs.pk), data if method == "post" else {}
    )

    theirs.refresh_from_db()
    assert response.status_code == 404
    assert theirs.first_name == "Inconnu"
    assert AccessEvent.objects.filter(action=Action.DENIED).exists()


def test_relatives_pages_require_a_patient_account(client, clinic, otp_login):
    assert client.get("/me/relatives/").status_code == 302  # to the login page
    otp_login(client, clinic.practitioner.user)
    assert client.get("/me/relatives/").status_code == 404


def test_relatives_query_budget(patient_client, clinic, django_assert_max_num_queries):
    for _ in range(8):
        RelativeFactory(managed_by=clinic.patient)

    # Session, user, patient, relatives.
    with django_assert_max_num_queries(4):
        response = patient_client.get("/me/relatives/")

    assert len(response.context["relatives"]) == 8
