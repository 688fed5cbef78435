from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def tz_label(tzname: str) -> str:
    """The practice's time zone name when it differs from the site's, else nothing: a visitor
    reading 09:00 should know which 09:00 it is."""
    return tzname if tzname != settings.TIME_ZONE else ""
