"""The dashboard's own forms."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import UsernameField


class DashboardLoginForm(AdminAuthenticationForm):
    """Staff sign in with their email (an invitation makes it their username); the
    operators' accounts may have plain usernames. Worded as the console's sign-in."""

    username = UsernameField(
        label="Username (email)",
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
