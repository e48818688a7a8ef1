from django.apps import AppConfig


class LeadsConfig(AppConfig):
    """Leads: what a bot or an agent collected about a prospect, and the lead webhooks."""

    name = "leads"

    def ready(self):
        # What conversations and contacts ask of leads (their hooks.py).
        # why: ready() runs once every app's models are loaded, which these modules import.
        from contacts import hooks as contacts_hooks
        from conversations import hooks  # why: as above
        from leads import services

        hooks.lead_capture_register(services.lead_capture)
        contacts_hooks.contact_merging_register(services.leads_move_to_contact)
