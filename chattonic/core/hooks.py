"""Hooks: how a lower app causes something in a higher one without importing it.

A lower app (``bots``, ``conversations``) declares what it asks of the apps above it in its
own ``hooks.py``: a typed :class:`Slot` (one answer, e.g. "hand this conversation to a
person") or a typed :class:`Event` (any number of listeners, e.g. "these contacts are being
erased"). The higher app registers its answer in its ``AppConfig.ready()``, so everything is
in place before the first request or task. Not Django signals: each hook has one declared
signature (a ``Protocol``), its callers and answers can be found with grep, and using one
that nothing answered raises :class:`HookNotRegistered` instead of doing nothing. A system
check (``manage.py check``, run by ``make test`` and at deploy) lists any hook left without
an answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: Every slot and event declared, for the system check.
declared: list[Slot[Any] | Event[Any]] = []


class HookNotRegistered(RuntimeError):
    """A hook was used before the app that answers it registered (in its ``ready()``)."""


class Slot(Generic[F]):
    """One answer, registered once by the app that gives it."""

    def __init__(self, name: str, *, answered_by: str):
        self.name = name
        self.answered_by = answered_by
        self._answer: F | None = None
        declared.append(self)

    def register(self, answer: F) -> None:
        if self._answer is not None and self._answer is not answer:
            raise RuntimeError(f"{self.name} has an answer already ({self._answer!r}).")
        self._answer = answer

    @property
    def registered(self) -> bool:
        return self._answer is not None

    @property
    def answer(self) -> F:
        if self._answer is None:
            raise HookNotRegistered(
                f"{self.name}: nothing registered. {self.answered_by} registers it in its "
                "AppConfig.ready(); is that app in INSTALLED_APPS and has Django been set up?"
            )
        return self._answer


class Event(Generic[F]):
    """Listeners called in the order they registered, each with the same arguments."""

    def __init__(self, name: str, *, answered_by: str):
        self.name = name
        self.answered_by = answered_by
        self._listeners: list[F] = []
        declared.append(self)

    def register(self, listener: F) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    @property
    def registered(self) -> bool:
        return bool(self._listeners)

    @property
    def listeners(self) -> list[F]:
        if not self._listeners:
            raise HookNotRegistered(
                f"{self.name}: no listener registered. {self.answered_by} register in their "
                "AppConfig.ready(); are those apps in INSTALLED_APPS and has Django been set up?"
            )
        return list(self._listeners)


def unanswered() -> list[str]:
    """The names of the declared hooks that nothing has registered for."""
    return [hook.name for hook in declared if not hook.registered]


def hooks_answered_check(app_configs=None, **kwargs) -> list:
    """System check: every declared hook has its answer once the apps are ready."""
    from django.core.checks import Error

    return [
        Error(
            f"{hook.name} has no registered answer.",
            hint=f"{hook.answered_by} registers it in AppConfig.ready().",
            id="core.E101",
        )
        for hook in declared
        if not hook.registered
    ]
