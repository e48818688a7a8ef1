from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "support"

    def ready(self):
        # What privacy asks of support (privacy/hooks.py): an erase scrubs the tickets that
        # quote the contact.
        # why: ready() runs once every app's models are loaded, which these modules import.
        from privacy import hooks
        from support import services

        hooks.contact_erasing_register(services.tickets_scrub_erased)
