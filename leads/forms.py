"""The dashboard's form for a lead: its status and fields (rows of names and values)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from chattonic.core.errors import ServiceError
from contacts.forms import KeyValueField
from leads import services as leads
from leads.models import Lead


class LeadForm(forms.ModelForm):
    fields = KeyValueField(
        max_entries=leads.MAX_FIELDS,
        noun="field",
        required=False,
        help_text="What the lead told us, a name and a value a row.",
    )

    class Meta:
        model = Lead
        fields = ["status", "fields"]

    def clean_fields(self):
        try:
            return leads.clean_fields(self.cleaned_data.get("fields") or {})
        except ServiceError as exc:
            raise ValidationError(exc.message) from None
