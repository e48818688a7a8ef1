"""Browsers ask every site for /favicon.ico: it leads to the platform's icon, so no page of the
dashboard, the console or the demo logs a 404 in the browser's console."""

from django.contrib.staticfiles import finders


def test_favicon_ico_leads_to_the_platforms_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/chattonic/favicon.svg"
    icon = finders.find("chattonic/favicon.svg")
    assert icon is not None
    with open(icon, encoding="utf-8") as file:
        assert file.read().startswith("<svg")
