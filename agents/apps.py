from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"

    def ready(self):
        # What conversations asks of the agents (conversations/hooks.py): the handoff and the
        # away form; what privacy asks (privacy/hooks.py): a contact's notes and handoff
        # history in its export and erase.
        # why: ready() runs once every app's models are loaded, which these modules import.
        from agents import selectors, services
        from conversations import hooks  # why: as above
        from privacy import hooks as privacy_hooks  # why: as above

        hooks.hand_off_register(services.flow_hand_off)
        hooks.away_contact_leave_register(services.away_contact_leave)
        hooks.staff_entries_register(selectors.staff_entries)
        privacy_hooks.contact_exporting_register(selectors.conversations_records_export)
        privacy_hooks.contact_erasing_register(services.conversations_records_erase)
