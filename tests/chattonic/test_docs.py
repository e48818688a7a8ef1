"""What docs/ and the README name exists, so the pages cannot silently rot: every management
command, setting, URL path, repository file and dotted Python name they quote in backticks is
still there. (What the pages promise about behaviour is tested beside that behaviour.)"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import re
from pathlib import Path

import pytest
from django.core.management import get_commands
from django.urls import Resolver404, resolve

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

# Inline code spans; fenced blocks are read as lines of shell (commands only).
SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
COMMAND = re.compile(r"manage\.py\s+([a-z_]+)")
UPPER = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")
# Upper-case words in backticks that are not settings: HTTP, SQL, values.
# (`PING` is the Redis command.)
NOT_SETTINGS = {"GET", "POST", "PUT", "PATCH", "DELETE", "INSERT", "UPDATE", "NaN", "PING"}
TOP = [
    "agents/",
    "backups/",
    "bench/",
    "bots/",
    "chattonic/",
    "contacts/",
    "leads/",
    "messaging/",
    "privacy/",
    "stats/",
    "webchat/",
    "conversations/",
    "docs/",
    "static/",
    "support/",
    "templates/",
    "tests/",
    ".ci/",
]
TOP_FILES = {"pyproject.toml", "requirements.txt", "Makefile", "manage.py"}
DOTTED = re.compile(
    r"^(agents|backups|bots|chattonic|contacts|conversations|leads|messaging|privacy|stats|support|webchat)(\.[a-z_]\w*)+$"
)


def _spans() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text()
        prose = FENCE.sub("", text)
        found += [(page.name, span.strip()) for span in SPAN.findall(prose)]
    return found


def _commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text()
        blocks = FENCE.findall(text) + SPAN.findall(FENCE.sub("", text))
        found += [(page.name, name) for block in blocks for name in COMMAND.findall(block)]
    return found


def _settings_names() -> set[str]:
    source = (ROOT / "chattonic" / "settings.py").read_text()
    return set(re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", source))


def test_every_management_command_named_in_the_docs_exists():
    known = get_commands()
    missing = sorted(
        {f"{page}: manage.py {name}" for page, name in _commands() if name not in known}
    )
    assert _commands(), "the pattern finds no command: it is broken"
    assert not missing, missing


def _code_names() -> set[str]:
    names: set[str] = set()
    for file in ROOT.glob("**/*.py"):
        if ".venv" in file.parts or "node_modules" in file.parts:
            continue
        names |= set(re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", file.read_text(errors="replace")))
    return names


def test_every_setting_and_constant_named_in_the_docs_exists():
    """An upper-case name in backticks is a setting (ours or Django's), an environment variable
    read somewhere, or a constant of the code: each must still be there."""
    from django.conf import settings

    names = _settings_names() | _code_names()
    quoted = [(page, s) for page, s in _spans() if UPPER.match(s) and s not in NOT_SETTINGS]
    assert len(quoted) > 20, "the pattern finds too few settings: it is broken"
    missing = sorted(
        {f"{page}: {s}" for page, s in quoted if s not in names and not hasattr(settings, s)}
    )
    assert not missing, missing


def _path_candidates() -> list[tuple[str, str]]:
    found = []
    for page, span in _spans():
        span = span.split("::", 1)[0]
        first = span.split()[0] if span.split() else ""
        if first in TOP_FILES or any(first.startswith(top) for top in TOP):
            if "<" in first or "{" in first:
                continue
            found.append((page, first.rstrip(".,:;")))
    return found


def _exists(name: str) -> bool:
    """A file or folder; a module written without `.py` (`agents/realtime`, or with the name
    in it, `conversations/realtime.message_payload`); a migration as `<app>/<number>`."""
    app, _, rest = name.partition("/")
    if re.fullmatch(r"\d{4}", rest):
        return any((ROOT / app / "migrations").glob(f"{rest}_*.py"))
    return any(
        (ROOT / candidate).exists()
        for candidate in (name, name + ".py", name.split(".", 1)[0] + ".py")
    )


def test_every_repository_file_named_in_the_docs_exists():
    candidates = _path_candidates()
    assert len(candidates) > 30, "the pattern finds too few paths: it is broken"
    missing = []
    for page, name in candidates:
        if "*" in name:
            parent = (ROOT / name).parent
            if not fnmatch.filter([p.name for p in parent.glob("*")], Path(name).name):
                missing.append(f"{page}: {name}")
        elif not _exists(name):
            missing.append(f"{page}: {name}")
    assert not missing, sorted(set(missing))


def test_every_test_named_in_the_docs_exists():
    named = [
        (page, span)
        for page, span in _spans()
        if span.startswith("tests/") and "::" in span and not span.endswith("...")
    ]
    missing = []
    for page, span in named:
        file, test = span.split("::", 1)
        tree = ast.parse((ROOT / file).read_text())
        defined = {
            n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        if test.split("[", 1)[0] not in defined:
            missing.append(f"{page}: {span}")
    assert not missing, missing


# Paths of ours; others in the pages are files on the machine, Telegram's API, or what an agent
# types in the console. Paths of the REST API are often written relative to /api/v1.
OURS = re.compile(
    r"^/(api|dashboard|console|demo|hooks|ws|regions|webchat|accounts|healthz|readyz)\b"
)
API_RELATIVE = re.compile(r"^/(bots|bot-templates|contacts|conversations|leads|stats|tickets)\b")


def _url_candidates() -> list[tuple[str, str]]:
    found = []
    for page, span in _spans():
        words = span.split(" ", 1)
        if len(words) == 2 and words[0] in {"GET", "POST", "PUT", "PATCH", "DELETE", "PUT/PATCH"}:
            span = words[1]
        if OURS.match(span) or API_RELATIVE.match(span):
            found.append((page, span))
    return found


def _sample(path: str) -> str:
    return re.sub(r"<[^>]+>|\{[^}]+\}", "1", path).split("?", 1)[0]


def _routes() -> list[str]:
    """Every HTTP and WebSocket route, its converters filled with a sample value."""
    from django.urls import get_resolver

    from agents.routing import websocket_urlpatterns as agents
    from webchat.routing import websocket_urlpatterns as webchat

    def walk(patterns, prefix=""):
        for p in patterns:
            here = prefix + str(p.pattern).lstrip("^").rstrip("$")
            if hasattr(p, "url_patterns"):
                yield from walk(p.url_patterns, here)
            else:
                yield "/" + here

    routes = list(walk(get_resolver().url_patterns)) + list(walk(agents + webchat))
    return [re.sub(r"<[^>]+>", "1", r) for r in routes]


def test_every_url_named_in_the_docs_resolves():
    candidates = _url_candidates()
    assert len(candidates) > 10, "the pattern finds too few URLs: it is broken"
    routes = _routes()
    missing = []
    for page, span in candidates:
        tries = [_sample(span)]
        if API_RELATIVE.match(span):
            tries.append("/api/v1" + tries[0])
        ok = False
        for path in tries:
            if path.startswith("/ws/"):
                ok = ok or path in routes
                continue
            try:
                resolve(path)
                ok = True
            except Resolver404:
                # A prefix the page names (`/api/v1/`, `/hooks/`) is fine if routes live under it.
                ok = ok or any(r.startswith(path.rstrip("/") + "/") for r in routes)
        if not ok:
            missing.append(f"{page}: {span}")
    assert not missing, sorted(set(missing))


def test_every_python_name_in_the_docs_imports():
    named = sorted({(page, s.rstrip("()")) for page, s in _spans() if DOTTED.match(s.rstrip("()"))})
    assert len(named) > 5, "the pattern finds too few names: it is broken"
    missing = []
    for page, dotted in named:
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                missing.append(f"{page}: {dotted}")
            break
        else:
            missing.append(f"{page}: {dotted}")
    assert not missing, missing


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_between_pages_lands(page):
    missing = []
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        if not (page.parent / target).exists():
            missing.append(target)
    assert not missing, missing


def test_every_migration_named_in_the_docs_exists():
    """`bots.0004`, `tenancy.0003`: an app label and a migration number."""
    from django.apps import apps

    named = sorted({s for _, s in _spans() if re.fullmatch(r"[a-z_]+\.\d{4}", s)})
    assert named, "the pattern finds no migration: it is broken"
    missing = []
    for name in named:
        label, number = name.split(".")
        try:
            folder = Path(apps.get_app_config(label).path) / "migrations"
        except LookupError:
            missing.append(name)
            continue
        if not any(folder.glob(f"{number}_*.py")):
            missing.append(name)
    assert not missing, missing
