"""The dashboard: Django admin, scoped to the signed-in staff user's tenant.

Tenant staff (owners and admins) see their tenant's objects through ``TenantScopedAdmin``
(``chattonic.tenancy.admin``). Every other model registered here (users, groups, beat's
schedules, ...) is for the platform's operators (superusers) only: ``register`` wraps
its admin class so that tenant staff can neither see nor open it.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

from chattonic.regions import regions


class OperatorsOnly:
    """Mixin: only superusers may see or touch this model in the dashboard."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request, *args, **kwargs):
        return (
            request.user.is_active
            and request.user.is_superuser
            and super().has_add_permission(request, *args, **kwargs)
        )

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


class DashboardSite(admin.AdminSite):
    site_header = "Chat-Tonic dashboard"
    site_title = "Chat-Tonic"
    index_title = "Dashboard"

    @property
    def login_form(self):
        # why: this module loads with the admin app, before the auth forms can be imported
        from chattonic.tenancy.forms import DashboardLoginForm

        return DashboardLoginForm

    # Django's "View site" led back here ("/" is the dashboard): the header links the agent
    # console instead (templates/admin/base_site.html).
    site_url = None

    def has_permission(self, request):
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        if user.is_superuser:
            return True
        membership = getattr(request, "membership", None)
        return bool(membership and membership.is_staff_role)

    def register(self, model_or_iterable, admin_class=None, **options):
        from chattonic.tenancy.admin import TenantAwareAdmin

        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, TenantAwareAdmin) and not issubclass(
            admin_class, OperatorsOnly
        ):
            admin_class = type(
                f"OperatorsOnly{admin_class.__name__}", (OperatorsOnly, admin_class), {}
            )
        super().register(model_or_iterable, admin_class, **options)

    def get_app_list(self, request, app_label=None):
        """Tenant staff: their models in named groups (chattonic.dashboard.NAVIGATION), the
        statistics among them. Operators, and an app's own page: Django's list of apps."""
        if app_label is not None or request.user.is_superuser:
            return super().get_app_list(request, app_label)
        from chattonic.dashboard import navigation

        return navigation(self._build_app_dict(request))

    def index(self, request, extra_context=None):
        from chattonic import dashboard

        tenant = getattr(request, "tenant", None)
        if request.user.is_superuser:
            extra = {"operator": dashboard.operator_overview()}
        elif tenant is not None:
            extra = {"home": dashboard.home_overview(tenant), "title": tenant.name}
        else:
            extra = {}
        return super().index(request, {**extra, **(extra_context or {})})

    def autocomplete_view(self, request):
        from chattonic.tenancy.admin import TenantAutocompleteJsonView

        return TenantAutocompleteJsonView.as_view(admin_site=self)(request)

    def each_context(self, request):
        context = super().each_context(request)
        context["tenant"] = getattr(request, "tenant", None)
        # The regions' switcher: each region's dashboard (its bots are there).
        context["regions"] = list(regions().values())
        # The apps of one page (privacy, stats...): their own page would only repeat its link,
        # so the breadcrumbs leave it out (templates/admin/_app_crumb.html).
        apps = [model._meta.app_label for model in self._registry]
        context["one_model_apps"] = {label for label in apps if apps.count(label) == 1}
        if not request.user.is_superuser:
            from chattonic.dashboard import crumb_parents

            context["crumb_parents"] = crumb_parents()
        return context


class DashboardAdminConfig(AdminConfig):
    default_site = "chattonic.admin_site.DashboardSite"
