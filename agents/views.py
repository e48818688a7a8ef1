"""The agent console's page and its sign-in."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseForbidden
from django.shortcuts import render


class ConsoleLoginView(auth_views.LoginView):
    template_name = "agents/login.html"
    redirect_authenticated_user = True


@login_required(login_url="/console/login/")
def console(request):
    """The live queue, my conversations and the conversation view; data comes over /ws/agent/."""
    if request.membership is None:
        return HttpResponseForbidden("The console is for the agents of a tenant.")
    return render(request, "agents/console.html", {"membership": request.membership})
