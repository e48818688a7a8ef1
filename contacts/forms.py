"""The dashboard's forms for contacts, and names and values as rows of inputs (a contact's
attributes; a lead's fields use them too), checked by the services' own rules."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError

from contacts.models import Contact
from contacts.services import MAX_ATTRIBUTES

KEY_MAX = 100
VALUE_MAX = 1000
KEY_VALUES_MEDIA = forms.Media(
    css={"all": ["contacts/key_values.css"]}, js=["contacts/key_values.js"]
)


def shown(value) -> str:
    """A stored value as its input shows it: text as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class KeyValueWidget(forms.Widget):
    """Rows of two text inputs, a name and its value, that rows can be added to and removed
    from (``contacts/static/contacts/key_values.js``); one empty row is always there to type
    into."""

    template_name = "contacts/widgets/key_values.html"

    def __init__(self, attrs=None, *, noun: str = "attribute"):
        super().__init__(attrs)
        self.noun = noun

    def format_value(self, value):
        if isinstance(value, str):  # a stored form's initial data
            try:
                value = json.loads(value)
            except ValueError:
                value = {}
        if isinstance(value, dict):
            return [(str(key), shown(item)) for key, item in value.items()]
        return [(str(key), str(item)) for key, item in value or []]

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        base_id = context["widget"]["attrs"].get("id") or f"id_{name}"
        rows = [
            {"key": key, "value": item, "n": index + 1, "id": f"{base_id}_{index}"}
            for index, (key, item) in enumerate([*self.format_value(value), ("", "")])
        ]
        context["widget"].update(rows=rows, base_id=base_id, noun=self.noun)
        return context

    def value_from_datadict(self, data, files, name):
        keys = data.getlist(f"{name}_key") if hasattr(data, "getlist") else []
        values = data.getlist(f"{name}_value") if hasattr(data, "getlist") else []
        values = [*values, *[""] * (len(keys) - len(values))]
        return list(zip(keys, values, strict=False))

    def value_omitted_from_data(self, data, files, name):
        return False  # no row at all is no entry, not a value left out

    def id_for_label(self, id_):
        return f"{id_}_0_key" if id_ else id_


class KeyValueField(forms.Field):
    """A dict of names and texts from the rows; empty rows are dropped. ``typed_like`` then
    keeps a stored value's type (a number, true) when its text was not changed."""

    widget = KeyValueWidget

    def __init__(self, *, max_entries: int, noun: str = "attribute", **kwargs):
        self.max_entries = max_entries
        kwargs.setdefault("widget", KeyValueWidget(noun=noun))
        super().__init__(**kwargs)

    def to_python(self, value):
        if isinstance(value, dict):
            return {str(key): shown(item) for key, item in value.items()}
        result, problems = {}, []
        for key, item in value or []:
            key, item = str(key).strip(), str(item).strip()
            if not key and not item:
                continue
            if not key:
                problems.append(f"The value {item[:40]!r} needs a name.")
            elif len(key) > KEY_MAX:
                problems.append(f"{key[:40]}…: a name has at most {KEY_MAX} characters.")
            elif key in result:
                problems.append(f"{key}: the name is there twice.")
            elif len(item) > VALUE_MAX:
                problems.append(f"{key}: at most {VALUE_MAX} characters.")
            else:
                result[key] = item
        if len(result) > self.max_entries:
            problems.append(f"At most {self.max_entries} entries.")
        if problems:
            raise ValidationError(problems)
        return result

    def has_changed(self, initial, data):
        try:
            return self.to_python(initial or {}) != self.to_python(data)
        except ValidationError:
            return True


def typed_like(new: dict, old: dict | None) -> dict:
    """``new`` (texts) with each value whose text is unchanged given back its stored type."""
    old = old if isinstance(old, dict) else {}
    return {
        key: old[key] if key in old and shown(old[key]) == value else value
        for key, value in new.items()
    }


class ContactForm(forms.ModelForm):
    attributes = KeyValueField(
        max_entries=MAX_ATTRIBUTES,
        required=False,
        help_text="What you know about this person, a name and a value a row (plan, company, "
        "customer number…). Flows and the API read and set them too.",
    )

    class Meta:
        model = Contact
        fields = ["name", "email", "phone", "attributes"]

    def clean_attributes(self):
        return typed_like(self.cleaned_data.get("attributes") or {}, self.instance.attributes)
