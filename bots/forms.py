"""The dashboard's forms for bots: the settings (every structured value as its own controls),
the raw definition of the flow, a flow file to import.

Each form checks its values with the services' own rules (``bots.services.bot_fields_clean``,
``definition_errors_as_fields``), so a refusal shows beside the field that caused it and the
dashboard refuses exactly what the API refuses.
"""

from __future__ import annotations

import json
from functools import cache
from itertools import zip_longest

from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from bots import services
from bots.gallery import BLANK, FLOW_TEMPLATES
from bots.hours import MIDNIGHT, WEEKDAY_NAMES, WEEKDAYS, business_hours_normalize
from bots.models import Bot
from bots.origins import origin_normalize, origins_normalize
from chattonic.core import inputs
from chattonic.core.errors import ServiceError

MAX_IMPORT_BYTES = 1024 * 1024
DASHBOARD_MEDIA = forms.Media(css={"all": ["bots/dashboard.css"]}, js=["bots/dashboard.js"])
# The flow editor: Drawflow (static/vendor/drawflow, see its README) and our code over it.
BUILDER_MEDIA = DASHBOARD_MEDIA + forms.Media(
    css={"all": ["vendor/drawflow/drawflow.min.css", "bots/builder.css"]},
    js=["vendor/drawflow/drawflow.min.js", "bots/builder.js"],
)


# --- Allowed origins: one URL field a row -----------------------------------------------------


class OriginListWidget(forms.Widget):
    """A list of URL inputs, one origin each, that rows can be added to and removed from
    (``bots/dashboard.js``); one empty row is always there to type a new origin into."""

    template_name = "bots/widgets/origin_list.html"

    def format_value(self, value):
        if isinstance(value, str):  # initial data from a stored form
            try:
                value = json.loads(value)
            except ValueError:
                value = [value]
        return [str(v) for v in value or [] if str(v).strip()]

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        rows = []
        base_id = context["widget"]["attrs"].get("id") or f"id_{name}"
        for index, origin in enumerate([*self.format_value(value), ""]):
            invalid = False
            if origin:
                try:
                    origin_normalize(origin)
                except ValueError:
                    invalid = True
            rows.append(
                {"value": origin, "id": f"{base_id}_{index}", "n": index + 1, "invalid": invalid}
            )
        context["widget"]["rows"] = rows
        context["widget"]["base_id"] = base_id
        return context

    def value_from_datadict(self, data, files, name):
        return data.getlist(name) if hasattr(data, "getlist") else data.get(name, [])

    def value_omitted_from_data(self, data, files, name):
        return False  # no row at all is an empty list, not a value left out

    def id_for_label(self, id_):
        return f"{id_}_0" if id_ else id_


class OriginListField(forms.Field):
    widget = OriginListWidget
    default_error_messages = {"invalid": "%(problem)s"}

    def to_python(self, value):
        if isinstance(value, str):
            value = [value]
        return [v.strip() for v in value or [] if isinstance(v, str) and v.strip()]

    def validate(self, value):
        super().validate(value)
        problems = []
        for origin in value:
            try:
                origin_normalize(origin)
            except ValueError as exc:
                problems.append(ValidationError(str(exc), code="invalid"))
        if problems:
            raise ValidationError(problems)

    def clean(self, value):
        value = super().clean(value)
        try:
            return origins_normalize(value)
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid") from None

    def has_changed(self, initial, data):
        try:
            return origins_normalize(self.to_python(initial)) != origins_normalize(
                self.to_python(data)
            )
        except ValueError:
            return True


# --- Business hours: a weekly grid --------------------------------------------------------------


def _hours_rows(value) -> dict[str, dict]:
    """Per weekday {"open": bool, "ranges": [[from, to], ...]}, from the stored form or from
    what the widget posted (``BusinessHoursWidget.value_from_datadict``)."""
    rows = {}
    for day in WEEKDAYS:
        entry = (value or {}).get(day)
        if isinstance(entry, dict):  # posted
            rows[day] = {
                "open": bool(entry.get("open")),
                "all_day": bool(entry.get("all_day")),
                "ranges": list(entry.get("ranges", [])),
            }
        else:  # stored: a list of ranges, "24:00" shown as the midnight it is
            stored = entry if isinstance(entry, list) else []
            all_day = [list(r) for r in stored] == ALL_DAY
            ranges = [] if all_day else [[a, "00:00" if b == MIDNIGHT else b] for a, b in stored]
            rows[day] = {"open": bool(stored), "all_day": all_day, "ranges": ranges}
    return rows


# A day open round the clock: one checkbox, "All day", rather than a range that a browser
# shows as "From 12:00 AM to 12:00 AM".
ALL_DAY = [["00:00", MIDNIGHT]]


class BusinessHoursWidget(forms.Widget):
    """Per weekday: open or closed, all day or its opening ranges as pairs of time inputs
    (ranges are added and removed by ``bots/dashboard.js``; a closed or all-day day keeps a
    range to change to)."""

    template_name = "bots/widgets/business_hours.html"

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = {}
        base_id = context["widget"]["attrs"].get("id") or f"id_{name}"
        days = []
        for day, row in _hours_rows(value).items():
            ranges = row["ranges"] or [["09:00", "17:00"]]
            days.append(
                {
                    "key": day,
                    "name": WEEKDAY_NAMES[day],
                    "open": row["open"],
                    "all_day": row["all_day"],
                    "id": f"{base_id}_{day}",
                    "ranges": [
                        {"start": start, "end": end, "n": n}
                        for n, (start, end) in enumerate(ranges, start=1)
                    ],
                }
            )
        context["widget"]["days"] = days
        context["widget"]["base_id"] = base_id
        return context

    def value_from_datadict(self, data, files, name):
        getlist = data.getlist if hasattr(data, "getlist") else lambda key: data.get(key, [])
        return {
            day: {
                "open": bool(data.get(f"{name}-{day}-open")),
                "all_day": bool(data.get(f"{name}-{day}-allday")),
                "ranges": [
                    [start or "", end or ""]
                    for start, end in zip_longest(
                        getlist(f"{name}-{day}-from"), getlist(f"{name}-{day}-to")
                    )
                ],
            }
            for day in WEEKDAYS
        }

    def value_omitted_from_data(self, data, files, name):
        return False

    def id_for_label(self, id_):
        return ""  # a group of controls (role="group", named by aria-label), not one input


def _clock(value: str) -> str:
    """A time input's value ("HH:MM", or "HH:MM:SS" with seconds) as "HH:MM"."""
    value = value.strip()
    return value[:5] if len(value) == 8 and value[5] == ":" else value


class BusinessHoursField(forms.Field):
    widget = BusinessHoursWidget

    def clean(self, value):
        rows = _hours_rows(value)
        hours: dict[str, list[list[str]]] = {}
        problems = []
        for day, row in rows.items():
            if not row["open"]:
                continue
            if row["all_day"]:
                hours[day] = [list(r) for r in ALL_DAY]
                continue
            name = WEEKDAY_NAMES[day]
            ranges = []
            for start, end in row["ranges"]:
                start, end = _clock(start or ""), _clock(end or "")
                if not start and not end:
                    continue  # an empty row
                if not start or not end:
                    problems.append(f"{name}: give both times of each range, or remove it.")
                    break
                ranges.append([start, MIDNIGHT if end == "00:00" else end])
            else:
                if not ranges:
                    problems.append(f"{name} is open: give its hours, or mark it closed.")
            hours[day] = ranges
        if not problems:
            try:
                return business_hours_normalize(hours)
            except ValueError as exc:
                problems.append(str(exc))
        raise ValidationError([ValidationError(p, code="invalid") for p in problems])

    def has_changed(self, initial, data):
        try:
            return business_hours_normalize(initial or {}) != self.clean(data)
        except (ValidationError, ValueError):
            return True


# --- The bot's settings -----------------------------------------------------------------------


class LongSelect(forms.Select):
    """A select of hundreds of fixed options (the time zones), written once per process and
    then only marked: Django writes each option through a template of its own at every
    page, a tenth of a second for the time zones."""

    def render(self, name, value, attrs=None, renderer=None):
        final = self.build_attrs(self.attrs, attrs)
        final["name"] = name
        options = _options_html(tuple(self.choices))
        if value is not None:
            marker = format_html('<option value="{}">', value)
            options = options.replace(marker, marker[:-1] + " selected>", 1)
        return format_html("<select{}>{}</select>", flatatt(final), mark_safe(options))  # noqa: S308 - escaped by _options_html


@cache
def _options_html(choices: tuple) -> str:
    return format_html_join("", '<option value="{}">{}</option>', choices)


def time_zone_choices() -> list[tuple[str, str]]:
    return [(zone, zone.replace("_", " ")) for zone in services.time_zones()]


def _default(name: str):
    """The model field's default, as a declared form field's initial value (a ModelForm
    takes it from the fields it makes itself only)."""
    return Bot._meta.get_field(name).get_default


class BotForm(forms.ModelForm):
    """The bot's settings (not its flow: that is the raw definition's page, FlowForm)."""

    allowed_origins = OriginListField(
        required=False,
        initial=_default("allowed_origins"),
        label="Allowed origins",
        help_text="The sites whose pages may show this chat: scheme, host and port, no path "
        "(e.g. https://shop.example.com). This platform's own pages always may.",
    )
    business_hours = BusinessHoursField(
        required=False,
        initial=_default("business_hours"),
        label="Opening hours",
        help_text="A range to 00:00 ends at midnight.",
    )
    time_zone = forms.ChoiceField(
        choices=time_zone_choices,
        initial=_default("time_zone"),
        label="Time zone",
        widget=LongSelect,
    )
    theme_color = forms.CharField(
        label="Theme colour",
        widget=forms.TextInput(attrs={"type": "color"}),
        initial=_default("theme_color"),
    )
    fallback_limit = forms.IntegerField(
        required=False,
        initial=_default("fallback_limit"),
        min_value=0,
        max_value=services.MAX_FALLBACK_LIMIT,
        label=Bot._meta.get_field("fallback_limit").verbose_name.capitalize(),
        help_text=Bot._meta.get_field("fallback_limit").help_text,
    )
    intent_threshold = forms.FloatField(
        initial=_default("intent_threshold"),
        min_value=0,
        max_value=1,
        label=Bot._meta.get_field("intent_threshold").verbose_name.capitalize(),
        help_text=Bot._meta.get_field("intent_threshold").help_text,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
    )

    class Meta:
        model = Bot
        fields = list(services.EDITABLE_FIELDS)
        widgets = {
            "welcome_text": forms.Textarea(attrs={"rows": 2, "cols": 60}),
            "fallback_text": forms.Textarea(attrs={"rows": 2, "cols": 60}),
            "handoff_text": forms.Textarea(attrs={"rows": 2, "cols": 60}),
            "away_message": forms.Textarea(attrs={"rows": 2, "cols": 60}),
        }

    @property
    def media(self):
        return super().media + DASHBOARD_MEDIA

    def clean(self):
        cleaned = super().clean()
        changes = {k: cleaned[k] for k in services.EDITABLE_FIELDS if k in cleaned}
        try:
            cleaned.update(services.bot_fields_clean(bot=self.instance, changes=changes))
        except ServiceError as exc:
            for field, messages in (exc.fields or {None: [exc.message]}).items():
                self.add_error(field if field in self.fields else None, messages)
        return cleaned


class BotAddForm(BotForm):
    """A new bot: its settings, and the template its flow starts from (the gallery's)."""

    template = forms.ChoiceField(
        label="Start from",
        choices=lambda: [(t.name, t.title) for t in FLOW_TEMPLATES.values()],
        initial=BLANK,
        required=False,  # none: the starter flow, as the blank template
        help_text="The flow the bot starts with; change it in the flow editor.",
    )


# --- The flow's raw definition -------------------------------------------------------------------


class DefinitionField(forms.JSONField):
    """A flow definition as JSON text, checked with the drafts' rules (errors name the node
    and the field: ``definition.nodes.<node>.<field>: message``)."""

    widget = forms.Textarea(
        attrs={"rows": 30, "cols": 100, "class": "ct-json-editor", "spellcheck": "false"}
    )

    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)

    def to_python(self, value):
        # Read through the doors' cleaning step first: Django's JSONField would recurse
        # through a 100,000-deep document (a RecursionError, a 500).
        if isinstance(value, str) and value.strip():
            try:
                inputs.loads(value, field="definition")
            except inputs.InputError as exc:
                raise forms.ValidationError(exc.reason, code="invalid") from None
        return super().to_python(value)

    def bound_data(self, data, initial):
        if isinstance(data, str):
            try:
                inputs.loads(data)
            except inputs.InputError:
                return forms.fields.InvalidJSONInput(data)
        return super().bound_data(data, initial)

    def validate(self, value):
        super().validate(value)
        definition_errors(value)


def definition_errors(definition) -> None:
    """Raise a ValidationError listing every reason the draft rules refuse ``definition``."""
    if not isinstance(definition, dict):
        raise ValidationError("A flow definition is a JSON object.")
    errors = services.definition_errors_as_fields(definition)
    if errors:
        raise ValidationError(
            [f"{field}: {message}" for field, messages in errors.items() for message in messages]
        )


class FlowForm(forms.Form):
    definition = DefinitionField(
        label="Raw definition (JSON)",
        help_text="The draft flow: its nodes and intents. The test chat runs it; publish it "
        "to make it live.",
    )


class ImportForm(forms.Form):
    file = forms.FileField(help_text="A flow exported from a bot (JSON, up to 1 MB).")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError("The file is larger than 1 MB.")
        try:
            definition = inputs.loads(upload.read(), field="file")
        except inputs.InputError as exc:
            raise forms.ValidationError(
                f"The file is not valid JSON we take: {exc.reason}"
            ) from None
        if (
            isinstance(definition, dict)
            and "definition" in definition
            and "nodes" not in definition
        ):
            definition = definition["definition"]
        definition_errors(definition)
        return definition
