"""Fixtures of the agenda tests (pages, actions, phone booking)."""

import pytest

from tests.factories import colleague_of, known_patient_of


@pytest.fixture
def staff(client, clinic, otp_login):
    """The test client, logged in as the clinic's practitioner with a second factor."""
    otp_login(client, clinic.practitioner.user)
    return client


@pytest.fixture
def known(clinic):
    """Éloïse Lefèvre, seen a month ago, and her child Timothée, brought once."""
    patient = known_patient_of(
        clinic.practitioner, first_name="Éloïse", last_name="Lefèvre", phone="06 12 34 56 78"
    )
    patient.relatives.update(first_name="Timothée", last_name="Lefèvre")
    return patient


@pytest.fixture
def colleague(clinic):
    return colleague_of(clinic.practitioner)
