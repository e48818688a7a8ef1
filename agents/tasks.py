"""The console's periodic upkeep."""

from celery import shared_task


@shared_task
def presence_sweep() -> int:
    """Agents whose consoles stopped beating go offline; their conversations go back to the
    queue."""
    from agents.services import presence_sweep as sweep

    return sweep()
