"""Staff sessions with a second factor, for tests that are not about the login itself."""

from typing import Any

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice


def otp_login(client: Any, user: Any) -> TOTPDevice:
    """Log `user` into `client` (Django's or DRF's test client) as if they had passed the TOTP
    step: what every staff page and staff API call needs.

    Returns the confirmed TOTP device, so a test can compute codes from its key.
    """
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device
