from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    """Email and password login.

    ModelBackend already resolves the login through `User.objects.get_by_natural_key`, which looks
    the email up by its blind index. This subclass exists so the project names its own backend:
    Django then checks uniqueness of the login field as a warning, not an error (the encrypted
    column cannot be unique; its blind index is).
    """
