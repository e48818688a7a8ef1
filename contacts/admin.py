"""The dashboard's contacts: the list, a contact's page with its details, attributes and
where it talked to you, the merge, and its export and erase (the privacy app's)."""

import json

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Q
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from chattonic.core.admin_filters import TestChatFilter
from chattonic.core.errors import ServiceError
from chattonic.core.kinds import ChannelKind
from chattonic.tenancy.admin import TenantScopedAdmin
from contacts.forms import KEY_VALUES_MEDIA, ContactForm
from contacts.models import Contact, ContactIdentity
from contacts.services import contact_merge, contact_update
from privacy.models import PrivacyAudit
from privacy.services import contact_erase, contact_export


class IdentityInline(admin.TabularInline):
    model = ContactIdentity
    fields = ["kind", "channel", "address", "created_at"]
    readonly_fields = fields
    verbose_name = "identity"
    verbose_name_plural = "where this contact talked to you"
    template = "admin/contacts/contact/identities.html"

    @admin.display(description="address")
    def address(self, obj):
        # A web visitor's id is the widget's random key for a browser: internal, not an address.
        return "a web browser" if obj.kind == ChannelKind.WEBCHAT else obj.external_id

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


def _talked(*, sandbox: bool) -> Exists:
    """The contact has a conversation of the dashboard's test chat (``sandbox``) or a real
    one. The conversations app is above this one: its model is reached through the relation
    it declares on Contact, not imported."""
    conversation = Contact._meta.get_field("conversations").related_model
    return Exists(conversation.objects.filter(contact=OuterRef("pk"), is_sandbox=sandbox))


class SandboxContactFilter(TestChatFilter):
    """The contacts that exist only for the bot page's test chat (a "Test chat visitor" per
    chat) are left out unless asked for, as the Conversations list leaves out test chats. A
    contact who also talked for real, or never talked (made by the API), is a contact."""

    def test_chats(self) -> Q:
        return _talked(sandbox=True) & ~_talked(sandbox=False)


@admin.register(Contact)
class ContactAdmin(TenantScopedAdmin):
    form = ContactForm
    list_display = ["__str__", "email", "phone", "created_at"]
    list_filter = [SandboxContactFilter]
    search_fields = ["name", "email", "phone"]
    fields = [
        "name",
        "email",
        "phone",
        "attributes",
        "their_pages",
        "merged_into",
        "created_at",
        "updated_at",
    ]
    readonly_fields = ["their_pages", "merged_into", "created_at", "updated_at"]
    inlines = [IdentityInline]

    @property
    def media(self):
        return super().media + KEY_VALUES_MEDIA

    actions = ["merge_contacts", "export_contact", "erase_contacts"]

    def has_add_permission(self, request, *args, **kwargs):
        return False

    @admin.display(description="Conversations and leads")
    def their_pages(self, obj):
        """Links to the lists of the contact's conversations and leads (the dashboard's pages
        of the apps above, by their URL names: nothing of theirs is imported)."""
        if obj is None or obj.pk is None:
            return "-"
        query = f"?contact__id__exact={obj.pk}"
        return format_html(
            '<a href="{}{}">Their conversations</a> · <a href="{}{}">Their leads</a>',
            reverse("admin:conversations_conversation_changelist"),
            query,
            reverse("admin:leads_lead_changelist"),
            query,
        )

    def get_queryset(self, request):
        # Merged contacts live on in the contact they were merged into.
        return super().get_queryset(request).filter(merged_into__isnull=True)

    def save_model(self, request, obj, form, change):

        if not change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        contact_update(
            contact=obj,
            name=data.get("name"),
            email=data.get("email"),
            phone=data.get("phone"),
            attributes=data.get("attributes"),
        )

    # Deleting a contact (its page's Delete, the list's "Delete selected") is its erase: the
    # statistics keep its numbers, the audit and the erasure ledger record it, the apps above
    # scrub what they hold of it. A plain delete did none of that (and a restored backup
    # brought the contact back).
    def delete_model(self, request, obj):
        contact_erase(contact=obj, door=PrivacyAudit.Door.DASHBOARD, actor=request.user)

    def delete_queryset(self, request, queryset):
        for contact in list(queryset):
            contact_erase(contact=contact, door=PrivacyAudit.Door.DASHBOARD, actor=request.user)

    @admin.action(
        description="Merge the selected contacts into the oldest one", permissions=["change"]
    )
    def merge_contacts(self, request, queryset):

        chosen = list(queryset.order_by("created_at", "pk"))
        if len(chosen) < 2:
            self.message_user(request, "Select two contacts or more to merge.", messages.ERROR)
            return
        target = chosen[0]
        try:
            for source in chosen[1:]:
                target = contact_merge(target=target, source=source)
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(
            request, f"Merged {len(chosen) - 1} contact(s) into {target}.", messages.SUCCESS
        )

    @admin.action(description="Export the selected contact's data (JSON)", permissions=["view"])
    def export_contact(self, request, queryset):

        if queryset.count() != 1:
            self.message_user(request, "Select exactly one contact to export.", messages.ERROR)
            return None
        contact = queryset.get()
        data = contact_export(contact=contact, door=PrivacyAudit.Door.DASHBOARD, actor=request.user)
        response = HttpResponse(
            json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json"
        )
        response["Content-Disposition"] = f'attachment; filename="contact-{contact.pk}.json"'
        return response

    @admin.action(
        description="Erase the selected contacts and their messages", permissions=["delete"]
    )
    def erase_contacts(self, request, queryset):

        if request.POST.get("post") != "yes":
            return TemplateResponse(
                request,
                "privacy/erase_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "contacts": list(queryset),
                    "opts": self.model._meta,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                    "title": "Erase contacts",
                },
            )
        count = 0
        for contact in list(queryset):
            contact_erase(contact=contact, door=PrivacyAudit.Door.DASHBOARD, actor=request.user)
            count += 1
        self.message_user(
            request,
            f"Erased {count} contact(s): their messages and personal data are gone.",
            messages.SUCCESS,
        )
        return None
