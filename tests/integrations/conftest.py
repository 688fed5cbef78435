import pytest
import redis
from django.conf import settings
from django.core.cache import cache


def _forget_quota_windows(url: str, prefix: str) -> None:
    """Quota windows (and the detection throttle) live in Redis, outside a test's transaction,
    keyed by integration id: a later test, or a later run, must not inherit them."""
    if not url:
        cache.clear()  # the local-memory cache of a run without Redis
        return
    client = redis.Redis.from_url(url)
    for pattern in (f"{prefix}:*", "*integrations:detect:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture(autouse=True)
def _fresh_quotas():
    # Read now: a test may point the setting elsewhere (an unreachable Redis) until its end.
    url, prefix = settings.INTEGRATIONS_QUOTA_REDIS_URL, settings.INTEGRATIONS_QUOTA_KEY_PREFIX
    _forget_quota_windows(url, prefix)
    yield
    _forget_quota_windows(url, prefix)
