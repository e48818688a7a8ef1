"""Browser tests: Playwright driving Debian's Chromium against a real uvicorn process.

The server runs on this test run's database and channel layer (the embedded Redis on the
embedded defaults, ``REDIS_URL`` otherwise). Tests write their data with the ORM *before* they
open a page (``django_db(transaction=True)``, so it is committed and the server reads it).

Without /usr/bin/chromium the browser tests are skipped, unless ``CHATTONIC_REQUIRE_BROWSER=1``
(CI sets it), which makes them fail instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.processes import (
    Process,
    celery_worker,
    free_port,
    http_status,
    test_database_env,
    uvicorn,
    wait_for,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# Every wait in these tests is for a condition; this only bounds how long a broken one takes.
TIMEOUT_MS = 15_000


def _browser_missing_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@pytest.fixture
def _browser_available():
    """Skip without Chromium, or fail under CHATTONIC_REQUIRE_BROWSER=1 (CI)."""
    reason = _browser_missing_reason()
    if reason is not None:
        if os.environ.get("CHATTONIC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CHATTONIC_REQUIRE_BROWSER=1 but the browser tests cannot run: {reason}")
        pytest.skip(f"browser tests: {reason}")


@pytest.fixture
def browser(_browser_available, live_server_url, monkeypatch):
    """Chromium, for one test.

    Playwright's sync API keeps its event loop marked as running in this thread while it is
    started, so Django's guard would refuse the test's (plain, synchronous) ORM calls, and a
    later asyncio test of the same run could not start its own loop. Hence one Playwright per
    test, stopped before the database is flushed, and the guard lifted only meanwhile (the
    server process does not inherit it).
    """
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_context(browser, live_server_url):
    """Open fresh browser contexts (separate cookies and localStorage); closed after the test,
    which fails if a page of theirs threw an uncaught JavaScript error."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    contexts = []
    page_errors: list[str] = []

    def open_context(**options):
        context = browser.new_context(**{"base_url": live_server_url, **options})
        context.set_default_timeout(TIMEOUT_MS)
        context.on(
            "page", lambda page: page.on("pageerror", lambda exc: page_errors.append(str(exc)))
        )
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()
    assert not page_errors, f"JavaScript errors in the pages: {page_errors}"


@pytest.fixture
def live_server_env() -> dict[str, str]:
    """What the live server's environment adds to the test database's: a test module
    overrides this fixture (a fake platform's address, a public URL)."""
    return {}


@pytest.fixture
def live_server_url(transactional_db, tmp_path, live_server_env):
    """A real uvicorn process on the test database; stopped before the database is flushed."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = test_database_env()
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(live_server_env)
    server = Process(uvicorn(port), env, tmp_path / "web.log")
    with server:
        try:
            wait_for(lambda: http_status(f"{base}/healthz") == 200, 60, what="the web process")
        except AssertionError:
            raise AssertionError(f"the web process did not start:\n{server.output()}") from None
        yield base
    print(f"--- the web process's log ---\n{server.output()}")  # shown when the test fails
    errors = [line for line in server.output().splitlines() if "Traceback" in line]
    assert not errors, f"the web process logged errors:\n{server.output()}"


AXE = Path(__file__).with_name("vendor") / "axe-core" / "axe.min.js"
# WCAG 2.1 A and AA (axe's tags for 2.0 and 2.1 rules of both levels).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_violations(page, include: str | None = None) -> list[dict]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now (open shadow roots
    included), or within ``include`` (a CSS selector)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async ([include, tags]) => {
            const result = await axe.run(include ? {include: [include]} : document,
                                         {runOnly: {type: "tag", values: tags}});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary})),
            }));
        }""",
        [include, AXE_TAGS],
    )


def assert_accessible(page, include: str | None = None) -> None:
    """No axe-core violation (WCAG 2.1 A and AA) on the page, or within ``include``."""
    violations = axe_violations(page, include)
    lines = [
        f"{v['id']} ({v['impact']}): {v['help']}\n"
        + "\n".join(f"    {n['target']}: {n['summary']}" for n in v["nodes"][:5])
        for v in violations
    ]
    assert not violations, "axe-core found violations:\n" + "\n".join(lines)


@pytest.fixture
def worker(live_server_url, tmp_path):
    """The worker, as `make run` starts it beside the web process: it trains what is published."""
    worker = Process(celery_worker("e2e"), test_database_env(), tmp_path / "worker.log")
    with worker:
        wait_for(lambda: " ready." in worker.output(), 60, what="the worker")
        yield worker
    print(f"--- the worker's log ---\n{worker.output()}")


def controls_off_screen(page) -> list[str]:
    """The visible controls (buttons, fields, lists) that reach past the screen's edge (outside
    any box that scrolls sideways), or are cut by a box that hides what overflows it: what a
    phone's user cannot reach whole."""
    return page.evaluate(
        """() => [...document.querySelectorAll("button, input, select, textarea, a.button")]
            .filter(e => e.offsetParent !== null && e.type !== "hidden")
            .filter(e => {
                const r = e.getBoundingClientRect();
                if (r.width === 0) return false;
                let scrolls = false;  // in a box that scrolls sideways: reachable there
                for (let p = e.parentElement; p; p = p.parentElement) {
                    const overflow = getComputedStyle(p).overflowX;
                    if (overflow === "auto" || overflow === "scroll") scrolls = true;
                    if (overflow !== "hidden" && overflow !== "clip") continue;
                    const b = p.getBoundingClientRect();
                    if (r.right > b.right + 1 || r.left < b.left - 1) return true;
                }
                return !scrolls && (r.left < -1 || r.right > innerWidth + 1);
            })
            .map(e => e.outerHTML.slice(0, 120))"""
    )
