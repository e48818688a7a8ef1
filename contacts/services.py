"""Writes for contacts: update, merge (by hand, or automatic when a flow captures an email or
a phone number that another contact of the tenant already has)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from chattonic.core.errors import NotFound, ValidationFailed
from contacts import hooks
from contacts.models import Contact, ContactIdentity

PHONE_DIGITS = re.compile(r"\D+")
MAX_ATTRIBUTES = 100


def normalize_email(value: str) -> str:
    return (value or "").strip().lower()


def normalize_phone(value: str) -> str:
    """``+44 20 7946-0958``, ``0044 20 7946 0958`` and ``+442079460958`` are one number."""
    raw = (value or "").strip()
    digits = PHONE_DIGITS.sub("", raw)
    if raw.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    return digits


def clean_email(value: str, *, field: str = "email") -> str:
    email = normalize_email(value)
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise ValidationFailed.for_field(field, "Enter a valid email address.") from None
        if len(email) > 254:
            raise ValidationFailed.for_field(field, "At most 254 characters.")
    return email


def clean_phone(value: str, *, field: str = "phone") -> str:
    phone = normalize_phone(value)
    if value and str(value).strip() and not (7 <= len(phone.lstrip("+")) <= 15):
        raise ValidationFailed.for_field(field, "Enter a phone number of 7 to 15 digits.")
    return phone


def contact_live(contact: Contact) -> Contact:
    """The contact a merged one lives on as."""
    seen = set()
    while contact.merged_into_id and contact.pk not in seen:
        seen.add(contact.pk)
        contact = Contact.objects.get(pk=contact.merged_into_id)
    return contact


@transaction.atomic
def contact_update(
    *,
    contact: Contact,
    name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    attributes: dict | None = None,
) -> Contact:
    """Change a contact's details; an email or phone that another contact has merges it."""
    changed = []
    if name is not None:
        if len(name) > 200:
            raise ValidationFailed.for_field("name", "At most 200 characters.")
        contact.name = name.strip()
        changed.append("name")
    if email is not None:
        contact.email = clean_email(email)
        changed.append("email")
    if phone is not None:
        contact.phone = clean_phone(phone)
        changed.append("phone")
    if attributes is not None:
        if not isinstance(attributes, dict):
            raise ValidationFailed.for_field("attributes", "An object of names and values.")
        if len(attributes) > MAX_ATTRIBUTES:
            raise ValidationFailed.for_field("attributes", f"At most {MAX_ATTRIBUTES} entries.")
        contact.attributes = attributes
        changed.append("attributes")
    if changed:
        contact.updated_at = timezone.now()
        contact.save(update_fields=[*changed, "updated_at"])
    if email or phone:
        contact = contact_dedupe(contact=contact)
    return contact


@transaction.atomic
def contact_merge(*, target: Contact, source: Contact) -> Contact:
    """Merge ``source`` into ``target``: its identities, conversations and leads move over,
    details the target lacks are copied, and ``source`` stays as an empty pointer."""
    if source.tenant_id != target.tenant_id:
        raise NotFound("No such contact.")
    if source.pk == target.pk:
        raise ValidationFailed.for_field("source", "A contact cannot be merged into itself.")
    # Lock both, in id order, so that two merges of the same pair cannot interleave.
    locked = {
        c.pk: c
        for c in Contact.objects.select_for_update()
        .filter(pk__in=[target.pk, source.pk])
        .order_by("pk")
    }
    target, source = locked[target.pk], locked[source.pk]
    if source.merged_into_id or target.merged_into_id:
        raise ValidationFailed.for_field("source", "This contact was already merged.")
    tenant_id = target.tenant_id
    ContactIdentity.objects.for_tenant(tenant_id).filter(contact=source).update(contact=target)
    # What the apps above hold of the contact (conversations, leads) follows it.
    hooks.contact_merging(tenant_id=tenant_id, source_id=source.pk, target_id=target.pk)
    # Contacts merged earlier into ``source`` now point to ``target``.
    Contact.objects.for_tenant(tenant_id).filter(merged_into=source).update(merged_into=target)
    for key in ("name", "email", "phone"):
        if not getattr(target, key) and getattr(source, key):
            setattr(target, key, getattr(source, key))
    target.attributes = {**(source.attributes or {}), **(target.attributes or {})}
    target.updated_at = timezone.now()
    target.save(update_fields=["name", "email", "phone", "attributes", "updated_at"])
    source.name = source.email = source.phone = ""
    source.attributes = {}
    source.merged_into = target
    source.updated_at = timezone.now()
    source.save(update_fields=["name", "email", "phone", "attributes", "merged_into", "updated_at"])
    return target


def contact_duplicate(
    *, contact: Contact, email: str | None = None, phone: str | None = None
) -> Contact | None:
    """The oldest other live contact of the tenant with the same email or phone number
    (the contact's own, or the ``email`` and ``phone`` given)."""
    email = normalize_email(email if email is not None else contact.email)
    phone = normalize_phone(phone if phone is not None else contact.phone)
    match = Q()
    if email:
        match |= Q(email__iexact=email)
    if phone:
        match |= Q(phone=phone)
    if not match:
        return None
    return (
        Contact.objects.for_tenant(contact.tenant_id)
        .filter(match, merged_into__isnull=True)
        .exclude(pk=contact.pk)
        .order_by("created_at", "pk")
        .first()
    )


@transaction.atomic
def contact_dedupe(
    *, contact: Contact, email: str | None = None, phone: str | None = None
) -> Contact:
    """When another contact already has this email or phone, merge this one into it (the
    older contact stays) and return the one that lives on; else ``contact`` itself."""
    existing = contact_duplicate(contact=contact, email=email, phone=phone)
    if existing is None:
        return contact
    older, newer = sorted([existing, contact], key=lambda c: (c.created_at, c.pk))
    try:
        return contact_merge(target=older, source=newer)
    except ValidationFailed:
        # A concurrent flow merged one of them first: the contact it lives on now.
        return contact_live(Contact.objects.get(pk=contact.pk))


@transaction.atomic
def contact_for_details(
    *, tenant_id: int, name: str = "", email: str = "", phone: str = ""
) -> Contact:
    """The tenant's live contact with this email or phone, or a new one (for leads that
    come from the tenant's own systems)."""
    email = clean_email(email)
    phone = clean_phone(phone)
    if not (email or phone):
        raise ValidationFailed.for_field("contact", "Give a contact id, an email or a phone.")
    probe = Contact(tenant_id=tenant_id, email=email, phone=phone)
    existing = contact_duplicate(contact=probe)
    if existing is not None:
        return existing
    return Contact.objects.create(
        tenant_id=tenant_id, name=(name or "").strip()[:200], email=email, phone=phone
    )


def contact_fill_blanks(contact: Contact, **details: str) -> None:
    """A visitor's claimed details (a form, a flow's question) on their contact, where it has
    none yet: a claim never overwrites what the contact has (a staff member's edit, or
    details of another identity merged into it by staff)."""
    changed = []
    for key, value in details.items():
        if value and not getattr(contact, key):
            setattr(contact, key, value[: Contact._meta.get_field(key).max_length])
            changed.append(key)
    if changed:
        contact.updated_at = timezone.now()
        contact.save(update_fields=[*changed, "updated_at"])
