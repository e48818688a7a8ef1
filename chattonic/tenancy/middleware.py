"""Puts the signed-in user's membership and tenant on the request, from the session."""

from chattonic.tenancy.selectors import membership_for_user


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = membership_for_user(request.user)
        request.tenant = request.membership.tenant if request.membership else None
        return self.get_response(request)
