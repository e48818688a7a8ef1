from django.apps import AppConfig


class ContactsConfig(AppConfig):
    """Contacts: the people who talk to a tenant's bots, and how each channel knows them."""

    name = "contacts"
