"""Progress lines for the backup commands: elapsed time, then the message."""

from __future__ import annotations

import time


class Progress:
    def __init__(self, stdout, *, verbosity: int = 1):
        self.stdout = stdout
        self.verbosity = verbosity
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        if self.verbosity >= 1:
            elapsed = time.monotonic() - self.started
            for line in message.splitlines() or [""]:
                self.stdout.write(f"[{elapsed:7.1f}s] {line}")
