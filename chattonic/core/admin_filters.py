"""List filters the dashboard's apps share."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q


class TestChatFilter(admin.SimpleListFilter):
    """Test chats (the bot page's sandbox) are left out of a list unless asked for: "With
    test chats" shows both, "Test chats only" those alone. A subclass says which rows are
    test chats' (``test_chats``: a Q on its model)."""

    title = "test chat"
    parameter_name = "test_chats"

    def test_chats(self) -> Q:
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return [("with", "With test chats"), ("only", "Test chats only")]

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Without test chats",
        }
        for value, label in self.lookup_choices:
            yield {
                "selected": self.value() == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        if self.value() == "with":
            return queryset
        if self.value() == "only":
            return queryset.filter(self.test_chats())
        return queryset.exclude(self.test_chats())
