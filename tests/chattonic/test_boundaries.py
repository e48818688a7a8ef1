"""The apps' boundaries (docs/architecture.md, "Apps and their boundaries").

`lint-imports` (in `make test`) holds the floors. What it cannot see is *why* an import sits
inside a function: there it may hide a cycle between apps. So a function-local import of
another app (its top package differs from the module's) needs a comment saying why, `# why:`,
on the import or on the line just above it. And the hooks the lower apps declare are all
answered once Django is set up, reaching the higher apps' real rows.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chattonic.core import hooks as core_hooks

ROOT = Path(__file__).resolve().parents[2]
APPS = (
    "chattonic",
    "bots",
    "contacts",
    "conversations",
    "leads",
    "stats",
    "privacy",
    "messaging",
    "webchat",
    "agents",
    "support",
    "backups",
)
MARK = "why:"

#: Function-local imports across apps in modules that another branch is rewriting now.
#: (path, imported module): remove each entry when that code calls the hook instead.
PENDING: set[tuple[str, str]] = set()


def local_cross_app_imports(root: Path = ROOT) -> list[tuple[str, int, str, bool]]:
    """Every function-local import of another app in the apps' modules: (path, line,
    imported module, whether a ``why:`` comment is on its lines or the line above)."""
    found = []
    for app in APPS:
        for path in sorted((root / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            source = path.read_text()
            lines = source.splitlines()
            for function in ast.walk(ast.parse(source)):
                if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(function):
                    if isinstance(node, ast.Import):
                        modules = [alias.name for alias in node.names]
                    elif isinstance(node, ast.ImportFrom) and not node.level:
                        modules = [node.module or ""]
                    else:
                        continue
                    said = any(
                        MARK in line
                        for line in lines[max(0, node.lineno - 2) : node.end_lineno or node.lineno]
                    )
                    for module in modules:
                        if module.split(".")[0] in APPS and module.split(".")[0] != app:
                            found.append((str(path.relative_to(root)), node.lineno, module, said))
    # A function inside a function is walked twice.
    return sorted(set(found))


def test_no_function_local_import_crosses_apps_without_saying_why():
    unexplained = [
        f"{path}:{line} imports {module}"
        for path, line, module, said in local_cross_app_imports()
        if not said and (path, module) not in PENDING
    ]
    assert not unexplained, (
        "Function-local imports of another app: lift them to the top of the module, call a "
        f"hook instead (docs/architecture.md), or say why with a '# {MARK}' comment:\n"
        + "\n".join(unexplained)
    )


def test_pending_entries_are_still_needed():
    """An entry of PENDING whose import is gone must go too, or it would excuse a new one."""
    present = {(path, module) for path, _, module, said in local_cross_app_imports() if not said}
    assert not PENDING - present, f"Remove from PENDING: {sorted(PENDING - present)}"


def test_the_checker_sees_an_unexplained_import_and_accepts_a_why(tmp_path):
    app = tmp_path / "conversations"
    app.mkdir()
    for name in APPS:
        (tmp_path / name).mkdir(exist_ok=True)
    (app / "mod.py").write_text(
        "from bots.models import Bot\n"  # top level: lint-imports' business, not this test's
        "def a():\n"
        "    from agents.services import conversation_hand_off\n"
        "def b():\n"
        "    # why: the models are not loaded when this module is\n"
        "    from agents.models import Note\n"
        "def c():\n"
        "    from support.models import (  # why: see above\n"
        "        Ticket,\n"
        "    )\n"
        "    from conversations.models import Contact\n"  # its own app
    )
    assert local_cross_app_imports(tmp_path) == [
        ("conversations/mod.py", 3, "agents.services", False),
        ("conversations/mod.py", 6, "agents.models", True),
        ("conversations/mod.py", 8, "support.models", True),
    ]


def test_every_hook_is_answered_at_start_up():
    assert core_hooks.unanswered() == []
    names = {hook.name for hook in core_hooks.declared}
    assert {
        "conversations.hooks.hand_off",
        "conversations.hooks.away_contact_leave",
        "privacy.hooks.contact_exporting",
        "privacy.hooks.contact_erasing",
        "privacy.hooks.erasure_recorded",
        "bots.hooks.http_action_awaited",
        "bots.hooks.http_action_resume",
    } <= names


def test_an_unanswered_hook_says_who_should_answer_it():
    slot = core_hooks.Slot("tests.nobody", answered_by="the tests app")
    event = core_hooks.Event("tests.nobody_listens", answered_by="the tests app")
    try:
        with pytest.raises(core_hooks.HookNotRegistered, match="the tests app registers it"):
            slot.answer  # noqa: B018 - the property raises
        with pytest.raises(core_hooks.HookNotRegistered, match="the tests app register"):
            event.listeners  # noqa: B018 - the property raises
        from django.core.checks import run_checks

        ids = {error.id for error in run_checks() if "tests.nobody" in error.msg}
        assert ids == {"core.E101"}
    finally:
        core_hooks.declared.remove(slot)
        core_hooks.declared.remove(event)
