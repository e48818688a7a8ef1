"""The erasure ledger: every contact erase, kept with the backups, re-applied after a restore.

A copy taken before an erase still holds the contact. So that restoring it never brings the
contact back, each erase appends one line to ``BACKUP_DIR/erasure-ledger.jsonl`` inside the
erase's transaction (a ledger that cannot be written fails the erase), and ``restore`` (and
every ``migrate``) erases again each contact of the ledger that the database holds. A line
holds nothing personal: the tenant, each contact's id and creation time (a contact created
after a restore may get the id of an erased one, never its creation time too), the time.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from contacts.models import Contact
from privacy import services as privacy
from privacy.models import PrivacyAudit

logger = logging.getLogger("backups")

LEDGER_NAME = "erasure-ledger.jsonl"


def ledger_path() -> Path:
    return Path(settings.BACKUP_DIR) / LEDGER_NAME


def erasure_record(erasure: privacy.Erasure, *, path: Path | None = None) -> None:
    """Append the erase to the ledger, on disk (fsync) before the erase commits."""
    path = path or ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(
        {
            "tenant": erasure.tenant_id,
            "contacts": [[pk, created.isoformat()] for pk, created in erasure.contacts],
            "erased_at": erasure.erased_at.isoformat(),
        },
        separators=(",", ":"),
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one whole line per writer, across processes
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def ledger_read(path: Path | None = None) -> list[dict]:
    """The ledger's entries, oldest first (none when there is no ledger yet). A torn last
    line (a crash mid-write, whose erase then did not commit) is skipped."""
    path = path or ledger_path()
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("erasure ledger %s: line %s is not JSON; skipped", path, number)
    return entries


@dataclass(frozen=True)
class Reapplied:
    tenant_id: int
    contact_id: int
    erased_at: str
    summary: dict


def erasures_reapply(*, path: Path | None = None) -> list[Reapplied]:
    """Erase again every contact of the ledger that this database holds (same tenant, id and
    creation time): after a restore of a copy taken before those erases."""
    done: list[Reapplied] = []
    entries = ledger_read(path)
    if entries and Contact._meta.db_table not in connection.introspection.table_names():
        return done  # a partial migrate (the contacts' table is not there yet)
    for entry in entries:
        for pk, created in entry.get("contacts", []):
            created_at = datetime.fromisoformat(created)
            contact = (
                Contact.objects.for_tenant(int(entry["tenant"]))
                .filter(pk=pk, created_at=created_at)
                .first()
            )
            if contact is None:
                continue  # erased already, or never in this copy
            with transaction.atomic():
                audit = privacy.contact_erase(
                    contact=contact, door=PrivacyAudit.Door.RESTORE, recorded=True
                )
            done.append(Reapplied(contact.tenant_id, pk, entry.get("erased_at", ""), audit.summary))
    return done


def erasures_reapply_report(out, *, path: Path | None = None) -> list[Reapplied]:
    """``erasures_reapply``, writing a line per erasure re-applied to ``out``."""
    done = erasures_reapply(path=path)
    for item in done:
        out.write(
            f"Erasure re-applied: contact #{item.contact_id} of tenant #{item.tenant_id} "
            f"(erased {item.erased_at}; {item.summary.get('conversations', 0)} conversations, "
            f"{item.summary.get('messages', 0)} messages, {item.summary.get('leads', 0)} "
            "leads)\n"
        )
    return done
