import pytest
from bots import services
from tests.e2e.test_bot_pages import sign_in
from tests.factories import MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_smoke(new_context, live_server_url, tenant):
    owner = MembershipFactory(tenant=tenant, role="owner").user
    bot = services.bot_create(tenant=tenant, name="Leads", template="faq_handoff")
    page = new_context(viewport={"width": 1500, "height": 950}).new_page()
    logs = []
    page.on("console", lambda m: logs.append(m.text))
    page.on("response", lambda r: logs.append(r.url) if r.status >= 400 else None)
    sign_in(page, owner.username, f"/dashboard/bots/bot/{bot.pk}/builder/")
    page.wait_for_selector("body[data-ct-builder=ready]", state="attached")
    print("SCRIPTS", page.evaluate("Array.from(document.scripts).map(s => s.src).join(\" \")"))
    print("LOGS", logs, page.evaluate("typeof window.Drawflow + String(!!document.getElementById(\"ct-builder-data\"))"), page.evaluate("document.body.getAttribute(\"data-ct-builder\")"))
    page.screenshot(path="var/smoke.png")
    print(logs)
