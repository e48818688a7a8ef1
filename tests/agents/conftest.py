import pytest


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """The factories' users get passwords; hashing them slowly tests nothing here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
