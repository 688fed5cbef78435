import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import crypto
from accounts.fields import BlindIndexField, EncryptedQuerySet, EncryptedTextField


class Role(models.TextChoices):
    PATIENT = "patient", _("Patient")
    PRACTITIONER = "practitioner", _("Practitioner")
    SECRETARY = "secretary", _("Secretary")
    ADMIN = "admin", _("Administrator")


STAFF_ROLES = frozenset({Role.PRACTITIONER, Role.SECRETARY})
# Roles that reach other people's appointment data: a password alone never opens their sessions.
PRIVILEGED_ROLES = STAFF_ROLES | {Role.ADMIN}


def is_privileged(*, role: str, is_staff: bool, is_superuser: bool) -> bool:
    """Practice staff, platform admins and anyone who may open the Django admin: two-factor login
    is mandatory and sessions expire after a short idle time."""
    return role in PRIVILEGED_ROLES or is_staff or is_superuser


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_queryset(self) -> EncryptedQuerySet:
        return EncryptedQuerySet(self.model, using=self._db)

    def get_by_natural_key(self, username: str | None) -> "User":
        # The email column is encrypted: the login lookup goes through its blind index.
        # Every index key is tried, so accounts log in while the index is being rotated.
        return self.get(email_index__in=crypto.blind_indexes(username or "", kind="email"))

    def filter_by_email(self, email: str) -> "models.QuerySet[User]":
        return self.filter(email_index__in=crypto.blind_indexes(email, kind="email"))

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> "User":
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=crypto.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> "User":
        extra.update(is_staff=True, is_superuser=True, role=Role.ADMIN)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    # Binds each encrypted value to this row (accounts.fields): a copied ciphertext does not open.
    crypto_row_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = EncryptedTextField(_("email address"))
    email_index = BlindIndexField(source="email", kind="email", unique=True)
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.PATIENT)
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(_("staff status"), default=False)
    # A patient who opted in to two-step verification. Kept on the row the authentication
    # middleware loads anyway, so deciding whether a session needs its second factor costs no
    # query; accounts.two_factor keeps it in step with the confirmed devices.
    two_factor_enabled = models.BooleanField(_("two-step verification"), default=False)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        # Never the email: this string ends up in logs and admin history.
        return f"{self.get_role_display()} #{self.pk}"

    @property
    def is_practice_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_privileged(self) -> bool:
        return is_privileged(role=self.role, is_staff=self.is_staff, is_superuser=self.is_superuser)

    @property
    def requires_two_factor(self) -> bool:
        """Whether a session of this user must pass the second factor before it may be used."""
        return self.is_privileged or self.two_factor_enabled


class UserSession(AbstractBaseSession):
    """A database session that knows its user, device and last activity (SESSION_ENGINE is
    `accounts.sessions`), so a user can list and end their sessions.

    The IP and user agent are kept only for the session's life, for the owner to recognise it.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="sessions",
        db_index=False,  # the (user, expire_date) index below serves lookups by user
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_activity = models.DateTimeField(default=timezone.now)

    class Meta(AbstractBaseSession.Meta):
        verbose_name = _("session")  # type: ignore[assignment]
        verbose_name_plural = _("sessions")  # type: ignore[assignment]
        indexes = [models.Index(fields=["user", "expire_date"], name="accounts_session_user")]

    def __str__(self) -> str:
        return f"Session of user #{self.user_id}"

    @classmethod
    def get_session_store_class(cls) -> Any:
        from accounts.sessions import SessionStore

        return SessionStore


class SecondFactorLock(models.Model):
    """Consecutive refused second-factor codes of one account, and the lock they lead to.

    Per account, not per client: a second factor is guessed from many addresses as easily as
    from one, and only someone who already has the password can trigger the lock.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    failures = models.PositiveSmallIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("second-factor lock")
        verbose_name_plural = _("second-factor locks")

    def __str__(self) -> str:
        return f"Second-factor lock of user #{self.user_id}"
