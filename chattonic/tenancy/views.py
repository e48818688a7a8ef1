"""Staff doors outside the dashboard: accepting an invitation, and the sign-in lockout page."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from chattonic.core.errors import ServiceError
from chattonic.tenancy import selectors, services


class InvitationAcceptForm(forms.Form):
    first_name = forms.CharField(
        label="Your name", max_length=150, help_text="Visitors see it beside your messages."
    )
    password1 = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput)
    password2 = forms.CharField(label="Password again", strip=False, widget=forms.PasswordInput)

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password2") != data["password1"]:
            self.add_error("password2", "The two passwords differ.")
        return data


@never_cache
@sensitive_post_parameters("password1", "password2")
def invitation_accept(request, token: str):
    """The emailed link: choose a name and a password, get an account on the tenant's staff."""
    invitation = selectors.invitation_from_token(token)
    if invitation is None:
        return render(request, "tenancy/invitation.html", {"invalid": True}, status=404)
    context = {"invitation": invitation, "tenant": invitation.tenant}
    if selectors.account_for_email(invitation.email) is not None:
        # Only the mailbox's owner holds this link: telling them is no leak to the tenant.
        return render(request, "tenancy/invitation.html", {**context, "account_exists": True})
    form = InvitationAcceptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = services.invitation_accept(
                invitation=invitation,
                first_name=form.cleaned_data["first_name"],
                password=form.cleaned_data["password1"],
            )
        except ServiceError as exc:
            if exc.code == "account_exists":
                return render(
                    request, "tenancy/invitation.html", {**context, "account_exists": True}
                )
            for field, messages in exc.fields.items():
                field = "password1" if field == "password" else field
                form.add_error(field if field in form.fields else None, messages)
            if not exc.fields:
                form.add_error(None, exc.message)
        else:
            login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("/dashboard/" if membership.is_staff_role else "/console/")
    return render(request, "tenancy/invitation.html", {**context, "form": form})


def sign_in_locked_out(request, original_response=None, credentials=None):
    """django-axes' lockout answer for both sign-in pages: 429, and a page that says why
    and for how long. (Axes' async path passes the credentials second: both are optional.)"""
    username = (credentials or {}).get("username") if isinstance(credentials, dict) else None
    username = username or request.POST.get("username", "")
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    context = {
        "username": username,
        "minutes": minutes,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "sign_in_url": request.path,
    }
    return render(request, "tenancy/locked_out.html", context, status=429)
