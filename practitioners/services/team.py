"""A practice's secretaries, and the access each practitioner gives them to their own agenda.

Only the practitioner changes who may act on their agenda (`ensure_owner`). Access takes effect,
and ends, at the secretary's next request: booking.selectors read StaffAccess every time. Every
change is kept in StaffAccessChange. Team changes of one practice run one after the other (the
practice row is locked), so a secretary is never granted access while being removed.
"""

import logging
import secrets
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from accounts import crypto
from accounts.models import Role, User
from audit.actors import Actor
from booking.errors import InvalidInput, NotVisible
from practitioners.models import (
    Practice,
    PracticeMember,
    Practitioner,
    StaffAccess,
    StaffAccessChange,
)
from practitioners.services.schedule import ensure_owner

log = logging.getLogger(__name__)
Action = StaffAccessChange.Action


@dataclass(frozen=True)
class MemberAdded:
    member: PracticeMember
    invited: bool  # a new account, sent a link to choose its password
    already_member: bool


def record_staff_access_change(
    *,
    practice_id: int,
    practitioner_id: int | None,
    member: User | None,
    changed_by: User | None,
    action: str,
    level: str = "",
) -> StaffAccessChange:
    return StaffAccessChange.objects.create(
        practice_id=practice_id,
        practitioner_id=practitioner_id,
        member=member,
        changed_by=changed_by,
        action=action,
        level=level,
    )


def _lock_practice(practitioner: Practitioner) -> None:
    list(Practice.objects.select_for_update().filter(pk=practitioner.practice_id).values("pk"))


def _record(
    actor: Actor, practitioner: Practitioner, member: User, action: str, level: str = ""
) -> None:
    grant = action in (Action.GRANTED, Action.CHANGED, Action.WITHDRAWN)
    record_staff_access_change(
        practice_id=practitioner.practice_id,
        practitioner_id=practitioner.pk if grant else None,
        member=member,
        changed_by=actor.user,
        action=action,
        level=level,
    )


def _team_secretary(practitioner: Practitioner, user_id: int) -> User:
    """A secretary of the practitioner's practice, or one who already has access to their
    agenda (granted in the admin, say); anyone else is not in this team: NotVisible."""
    in_team = Q(practice_memberships__practice_id=practitioner.practice_id) | Q(
        staff_access__practitioner=practitioner
    )
    user = User.objects.filter(in_team, pk=user_id, role=Role.SECRETARY).distinct().first()
    if user is None:
        raise NotVisible(detail="not a secretary of this practice")
    return user


@transaction.atomic
def grant_staff_access(
    *, actor: Actor, practitioner: Practitioner, user_id: int, level: str
) -> StaffAccess:
    """Give a secretary of the practice `level` ("view" or "manage") on the practitioner's
    agenda, or change the level they have."""
    ensure_owner(actor, practitioner)
    if level not in StaffAccess.Level.values:
        raise InvalidInput(_("Choose view or manage."), field="level")
    _lock_practice(practitioner)
    member = _team_secretary(practitioner, user_id)
    access = StaffAccess.objects.filter(practitioner=practitioner, user=member).first()
    if access is None:
        access = StaffAccess.objects.create(practitioner=practitioner, user=member, level=level)
        _record(actor, practitioner, member, Action.GRANTED, level)
    elif access.level != level:
        access.level = level
        access.save(update_fields=["level"])
        _record(actor, practitioner, member, Action.CHANGED, level)
    return access


@transaction.atomic
def withdraw_staff_access(*, actor: Actor, practitioner: Practitioner, user_id: int) -> None:
    ensure_owner(actor, practitioner)
    _lock_practice(practitioner)
    access = (
        StaffAccess.objects.filter(practitioner=practitioner, user_id=user_id)
        .select_related("user")
        .first()
    )
    if access is None:
        raise NotVisible(detail="no access to withdraw")
    access.delete()
    _record(actor, practitioner, access.user, Action.WITHDRAWN, access.level)


@transaction.atomic
def add_practice_member(
    *, actor: Actor, practitioner: Practitioner, email: str, language: str = ""
) -> MemberAdded:
    """Add a secretary to the practitioner's practice, by the email of their account; an
    address without an account gets a new secretary account and a link to choose its password.

    Membership alone opens no agenda: each practitioner then grants access to their own.
    """
    ensure_owner(actor, practitioner)
    _lock_practice(practitioner)
    email = crypto.normalize_email(email)
    user = User.objects.filter_by_email(email).first()
    invited = user is None
    if user is None:
        user = _create_secretary(email=email, language=language)
    elif user.role != Role.SECRETARY:
        # Said the same for every kind of account: which kind an address belongs to is not the
        # practitioner's business.
        raise InvalidInput(_("This address cannot be added as a secretary."), field="email")
    member, created = PracticeMember.objects.get_or_create(
        practice=practitioner.practice, user=user
    )
    if created:
        _record(
            actor, practitioner, user, Action.MEMBER_INVITED if invited else Action.MEMBER_ADDED
        )
        _tell_member(practitioner=practitioner, user=user, invited=invited)
    return MemberAdded(member=member, invited=invited, already_member=not created)


def _create_secretary(*, email: str, language: str) -> User:
    if language not in dict(settings.LANGUAGES):
        language = settings.LANGUAGE_CODE
    # A random password rather than an unusable one: the password-reset form serves only
    # usable passwords, so a secretary whose invitation link expired can still get a new one.
    try:
        with transaction.atomic():  # savepoint: the blind index is the real guard
            return User.objects.create_user(
                email, secrets.token_urlsafe(32), role=Role.SECRETARY, language=language
            )
    except IntegrityError:  # invited by someone else at the same moment
        user = User.objects.filter_by_email(email).get()
    if user.role != Role.SECRETARY:
        raise InvalidInput(_("This address cannot be added as a secretary."), field="email")
    return user


@transaction.atomic
def remove_practice_member(*, actor: Actor, practitioner: Practitioner, user_id: int) -> None:
    """Take a secretary out of the practice, withdrawing the practitioner's own grant. Refused
    while colleagues still grant access: that decision is theirs, not this practitioner's."""
    ensure_owner(actor, practitioner)
    _lock_practice(practitioner)
    member = (
        PracticeMember.objects.filter(practice_id=practitioner.practice_id, user_id=user_id)
        .select_related("user")
        .first()
    )
    if member is None:
        raise NotVisible(detail="not a member of this practice")
    colleagues = StaffAccess.objects.filter(
        user_id=user_id, practitioner__practice_id=practitioner.practice_id
    ).exclude(practitioner=practitioner)
    if colleagues.exists():
        raise InvalidInput(
            _(
                "Other practitioners of the practice still give this secretary access to their "
                "agenda: they must withdraw it first."
            )
        )
    access = StaffAccess.objects.filter(practitioner=practitioner, user_id=user_id).first()
    if access is not None:
        access.delete()
        _record(actor, practitioner, member.user, Action.WITHDRAWN, access.level)
    member.delete()
    _record(actor, practitioner, member.user, Action.MEMBER_REMOVED)


# --- Emails -------------------------------------------------------------------------------------


def _tell_member(*, practitioner: Practitioner, user: User, invited: bool) -> None:
    base_url = settings.CRENEAU_BASE_URL.rstrip("/")
    context: dict[str, object] = {
        "practitioner": practitioner.display_name,
        "practice": practitioner.practice.name,
        "login_url": base_url + reverse("accounts:login"),
        "reset_url": base_url + reverse("accounts:password_reset"),
    }
    if invited:
        uid = urlsafe_base64_encode(force_bytes(user.pk))
        token = default_token_generator.make_token(user)
        path = reverse("accounts:password_reset_confirm", kwargs={"uidb64": uid, "token": token})
        context["link"] = base_url + path
        context["hours"] = max(1, settings.PASSWORD_RESET_TIMEOUT // 3600)
    template = "invited" if invited else "added"
    send = partial(send_team_email, to=user.email, template=template, context=context)
    transaction.on_commit(partial(send, language=user.language), robust=True)


def send_team_email(*, to: str, template: str, context: dict[str, object], language: str) -> None:
    with translation.override(language):
        subject = render_to_string(f"practitioners/settings/email/{template}_subject.txt", context)
        body = render_to_string(f"practitioners/settings/email/{template}_body.txt", context)
    try:
        send_mail(" ".join(subject.split()), body, None, [to])
    except OSError:
        # The membership is committed; a new link is one password reset away. Never the address.
        log.exception("team email %s could not be sent", template)
