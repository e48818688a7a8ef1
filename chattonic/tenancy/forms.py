"""The dashboard's own forms."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import UsernameField
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from chattonic.tenancy.models import Membership


class DashboardLoginForm(AdminAuthenticationForm):
    """Staff sign in with their email (an invitation makes it their username); the
    operators' accounts may have plain usernames. Worded as the console's sign-in."""

    username = UsernameField(
        label="Username (email)",
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )

    def confirm_login_allowed(self, user):
        """An agent's right email and password: told where their work is (with a link), not
        Django's "enter the correct username and password for a staff account"."""
        if user.is_active and not user.is_staff:
            agent = Membership.objects.filter(user=user, role=Membership.Role.AGENT).exists()
            if agent:
                raise ValidationError(
                    format_html(
                        'This is an agent\'s account: agents answer visitors in the <a href="{}">'
                        "agent console</a>. The dashboard is for the account's owners and admins.",
                        reverse("console-login"),
                    ),
                    code="agent_account",
                )
        super().confirm_login_allowed(user)
