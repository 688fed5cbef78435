"""The team page: a practitioner adds secretaries to the practice (an existing account, or an
invitation), grants "view" or "manage" on their own agenda, changes and withdraws it. The
secretary's access to the agenda data follows at their very next request."""

import re
from urllib.parse import urlsplit

import pytest
from django.contrib import admin
from django.core import mail
from django.test import Client, RequestFactory

from accounts.models import Role, User
from booking.errors import NotAllowed, NotVisible
from booking.selectors import staff_level, visible_appointments
from practitioners import services
from practitioners.admin import StaffAccessAdmin, StaffAccessChangeAdmin
from practitioners.models import PracticeMember, StaffAccess, StaffAccessChange
from tests.factories import (
    AppointmentFactory,
    PractitionerFactory,
    UserFactory,
    make_actor,
    secretary_of,
)

Action = StaffAccessChange.Action


@pytest.fixture(autouse=True)
def _in_english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


@pytest.fixture
def team(clinic):
    """The clinic, one booked appointment, and a secretary of the practice without access."""
    clinic.appointment = AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot
    )
    clinic.secretary = UserFactory(role=Role.SECRETARY, email="anne.secretaire@example.test")
    PracticeMember.objects.create(practice=clinic.practitioner.practice, user=clinic.secretary)
    return clinic


@pytest.fixture
def owner_client(team, client, otp_login):
    otp_login(client, team.practitioner.user)
    return client


def level_of(team) -> str | None:
    return staff_level(make_actor(team.secretary), team.practitioner.pk)


def sees_the_appointment(team) -> bool:
    visible = visible_appointments(make_actor(team.secretary))
    return visible.filter(pk=team.appointment.pk).exists()


def history(team) -> list[tuple[str, str]]:
    changes = StaffAccessChange.objects.filter(member=team.secretary).order_by("at", "pk")
    return [(change.action, change.level) for change in changes]


# --- Grant, change, withdraw --------------------------------------------------------------------


def test_grant_change_and_withdraw_take_effect_at_once(team, owner_client):
    access_url = f"/agenda/team/{team.secretary.pk}/access/"
    assert (level_of(team), sees_the_appointment(team)) == (None, False)

    assert owner_client.post(access_url, {"level": "view"}).status_code == 302
    assert (level_of(team), sees_the_appointment(team)) == ("view", True)

    assert owner_client.post(access_url, {"level": "manage"}).status_code == 302
    assert (level_of(team), sees_the_appointment(team)) == ("manage", True)

    response = owner_client.post(f"/agenda/team/{team.secretary.pk}/withdraw/")
    assert response.status_code == 302
    assert response["Location"] == f"/agenda/team/?practitioner={team.practitioner.pk}"
    assert (level_of(team), sees_the_appointment(team)) == (None, False)
    assert history(team) == [
        (Action.GRANTED, "view"),
        (Action.CHANGED, "manage"),
        (Action.WITHDRAWN, "manage"),
    ]


def test_a_secretarys_open_session_follows_the_changes(team, owner_client, otp_login):
    secretary = Client(HTTP_ACCEPT_LANGUAGE="en")
    otp_login(secretary, team.secretary)
    agenda_page = f"/agenda/absences/?practitioner={team.practitioner.pk}"
    block = {"start": "2026-06-03T08:00", "end": "2026-06-03T09:00"}
    assert secretary.get(agenda_page).status_code == 404

    owner_client.post(f"/agenda/team/{team.secretary.pk}/access/", {"level": "view"})
    assert secretary.get(agenda_page).status_code == 200
    assert secretary.post(agenda_page, block).status_code == 403

    owner_client.post(f"/agenda/team/{team.secretary.pk}/access/", {"level": "manage"})
    assert secretary.post(agenda_page, block).status_code == 302

    owner_client.post(f"/agenda/team/{team.secretary.pk}/withdraw/")
    assert secretary.get(agenda_page).status_code == 404


def test_granting_the_same_level_again_records_nothing(team):
    owner = make_actor(team.practitioner.user)
    for _ in range(2):
        services.grant_staff_access(
            actor=owner, practitioner=team.practitioner, user_id=team.secretary.pk, level="view"
        )

    assert history(team) == [(Action.GRANTED, "view")]


def test_access_is_only_granted_to_secretaries_of_the_practice(team, owner_client):
    outsider = secretary_of(PractitionerFactory())  # a secretary of another practice
    for user in (outsider, team.patient.user, PractitionerFactory().user):
        response = owner_client.post(f"/agenda/team/{user.pk}/access/", {"level": "view"})
        assert response.status_code == 404
        assert not StaffAccess.objects.filter(practitioner=team.practitioner, user=user).exists()


def test_an_unknown_level_is_refused(team, owner_client):
    response = owner_client.post(
        f"/agenda/team/{team.secretary.pk}/access/", {"level": "owner"}, follow=True
    )

    assert "Choose view or manage." in response.content.decode()
    assert level_of(team) is None


def test_withdrawing_access_that_was_never_given_is_404(team, owner_client):
    assert owner_client.post(f"/agenda/team/{team.secretary.pk}/withdraw/").status_code == 404


def test_only_the_practitioner_grants_access_to_their_agenda(team):
    manager = make_actor(secretary_of(team.practitioner))
    colleague = make_actor(PractitionerFactory(practice=team.practitioner.practice).user)

    for actor in (manager, colleague):
        with pytest.raises(NotAllowed):
            services.grant_staff_access(
                actor=actor, practitioner=team.practitioner, user_id=team.secretary.pk, level="view"
            )
    assert level_of(team) is None


# --- Adding secretaries to the practice ---------------------------------------------------------


def test_an_existing_secretary_account_joins_the_practice_without_access(
    team, owner_client, django_capture_on_commit_callbacks
):
    other = UserFactory(role=Role.SECRETARY, email="bob@example.test")

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post("/agenda/team/", {"email": "  Bob@Example.TEST "})

    assert response.status_code == 302
    assert PracticeMember.objects.filter(practice=team.practitioner.practice, user=other).exists()
    assert staff_level(make_actor(other), team.practitioner.pk) is None
    assert [message.to for message in mail.outbox] == [["bob@example.test"]]
    assert team.practitioner.practice.name in mail.outbox[0].body
    assert StaffAccessChange.objects.get(member=other).action == Action.MEMBER_ADDED
    assert "bob@example.test" in owner_client.get("/agenda/team/").content.decode()


def test_an_unknown_address_is_invited_to_choose_a_password(
    team, owner_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post("/agenda/team/", {"email": "new.secretary@example.test"})

    assert response.status_code == 302
    invited = User.objects.filter_by_email("new.secretary@example.test").get()
    assert (invited.role, invited.is_active, invited.language) == (Role.SECRETARY, True, "en")
    assert PracticeMember.objects.filter(user=invited).exists()
    assert StaffAccessChange.objects.get(member=invited).action == Action.MEMBER_INVITED
    [invitation] = mail.outbox
    assert invitation.to == ["new.secretary@example.test"]
    link = re.search(r"https?://\S+/accounts/reset/\S+/", invitation.body).group(0)

    owner_client.logout()
    set_password = owner_client.get(urlsplit(link).path)
    assert set_password.status_code == 302
    chosen = "a long and new passphrase 42"
    done = owner_client.post(
        set_password["Location"], {"new_password1": chosen, "new_password2": chosen}
    )
    assert done.status_code == 302
    invited.refresh_from_db()
    assert invited.check_password(chosen)
    assert "_auth_user_id" not in owner_client.session  # the second factor still comes first


@pytest.mark.parametrize("role", [Role.PATIENT, Role.PRACTITIONER, Role.ADMIN])
def test_an_address_of_another_kind_of_account_is_refused(team, owner_client, role):
    other = UserFactory(role=role, email="someone@example.test")

    response = owner_client.post("/agenda/team/", {"email": "someone@example.test"})

    assert response.status_code == 400
    assert "This address cannot be added as a secretary." in response.content.decode()
    assert not PracticeMember.objects.filter(user=other).exists()
    assert mail.outbox == []


def test_an_invalid_address_is_a_form_error(team, owner_client):
    response = owner_client.post("/agenda/team/", {"email": "not an address"})

    assert response.status_code == 400
    assert 'id="id_email_errors"' in response.content.decode()
    assert PracticeMember.objects.count() == 1


def test_adding_a_member_twice_says_so(team, owner_client):
    response = owner_client.post(
        "/agenda/team/", {"email": "anne.secretaire@example.test"}, follow=True
    )

    assert "already a member" in response.content.decode()
    assert PracticeMember.objects.filter(user=team.secretary).count() == 1


# --- Removing secretaries from the practice -----------------------------------------------------


def test_removing_a_member_withdraws_the_practitioners_own_grant(team, owner_client):
    StaffAccess.objects.create(practitioner=team.practitioner, user=team.secretary, level="view")

    response = owner_client.post(f"/agenda/team/{team.secretary.pk}/remove/")

    assert response.status_code == 302
    assert not PracticeMember.objects.filter(user=team.secretary).exists()
    assert (level_of(team), sees_the_appointment(team)) == (None, False)
    assert history(team) == [(Action.WITHDRAWN, "view"), (Action.MEMBER_REMOVED, "")]


def test_removing_is_refused_while_a_colleague_still_grants_access(team, owner_client):
    colleague = PractitionerFactory(practice=team.practitioner.practice)
    StaffAccess.objects.create(practitioner=colleague, user=team.secretary, level="manage")

    response = owner_client.post(f"/agenda/team/{team.secretary.pk}/remove/", follow=True)

    assert "they must withdraw it first" in response.content.decode()
    assert PracticeMember.objects.filter(user=team.secretary).exists()
    assert staff_level(make_actor(team.secretary), colleague.pk) == "manage"


def test_removing_someone_who_is_not_a_member_is_404(team, owner_client):
    outsider = secretary_of(PractitionerFactory())

    assert owner_client.post(f"/agenda/team/{outsider.pk}/remove/").status_code == 404
    assert PracticeMember.objects.filter(user=outsider).exists()


def test_a_colleague_cannot_withdraw_this_practitioners_grant(team):
    StaffAccess.objects.create(practitioner=team.practitioner, user=team.secretary, level="view")
    colleague = PractitionerFactory(practice=team.practitioner.practice)

    with pytest.raises(NotVisible):
        services.withdraw_staff_access(
            actor=make_actor(colleague.user), practitioner=colleague, user_id=team.secretary.pk
        )

    assert level_of(team) == "view"


# --- The page -----------------------------------------------------------------------------------


def test_the_team_page_lists_members_and_access(team, owner_client):
    StaffAccess.objects.create(practitioner=team.practitioner, user=team.secretary, level="view")
    outsider = UserFactory(role=Role.SECRETARY, email="granted.in.admin@example.test")
    StaffAccess.objects.create(practitioner=team.practitioner, user=outsider, level="manage")

    page = owner_client.get("/agenda/team/").content.decode()

    assert "anne.secretaire@example.test" in page
    assert "granted.in.admin@example.test" in page
    assert "Not a member of the practice." in page
    assert f'action="/agenda/team/{outsider.pk}/withdraw/' in page
    assert f'action="/agenda/team/{outsider.pk}/remove/' not in page
    assert page.count('<option value="view" selected>') == 1


def test_the_team_page_query_count_does_not_grow_with_the_team(
    team, owner_client, django_assert_max_num_queries
):
    owner = make_actor(team.practitioner.user)
    for index in range(15):
        services.add_practice_member(
            actor=owner, practitioner=team.practitioner, email=f"member{index}@example.test"
        )
    for member in PracticeMember.objects.all():
        services.grant_staff_access(
            actor=owner, practitioner=team.practitioner, user_id=member.user_id, level="view"
        )
    owner_client.get("/agenda/team/")

    # Session, user, OTP device, spare; agenda, levels, members, users, changes.
    with django_assert_max_num_queries(9):
        response = owner_client.get("/agenda/team/")

    assert response.content.decode().count('name="level"') == 16


# --- Changes made in the admin are kept too -----------------------------------------------------


def test_grants_made_in_the_admin_are_recorded_and_the_history_is_read_only(team):
    superuser = UserFactory(role=Role.ADMIN, is_staff=True, is_superuser=True)
    request = RequestFactory().post("/")
    request.user = superuser
    model_admin = StaffAccessAdmin(StaffAccess, admin.site)
    access = StaffAccess(practitioner=team.practitioner, user=team.secretary, level="view")

    model_admin.save_model(request, access, form=None, change=False)
    model_admin.delete_queryset(request, StaffAccess.objects.filter(pk=access.pk))

    assert history(team) == [(Action.GRANTED, "view"), (Action.WITHDRAWN, "view")]
    assert StaffAccessChange.objects.filter(changed_by=superuser).count() == 2
    history_admin = StaffAccessChangeAdmin(StaffAccessChange, admin.site)
    assert not history_admin.has_add_permission(request)
    assert not history_admin.has_change_permission(request)
    assert not history_admin.has_delete_permission(request)


def test_the_history_keeps_no_address(team):
    services.add_practice_member(
        actor=make_actor(team.practitioner.user),
        practitioner=team.practitioner,
        email="quiet@example.test",
    )

    row = StaffAccessChange.objects.values().get()
    assert row["action"] == Action.MEMBER_INVITED
    assert "quiet@example.test" not in str(row)
