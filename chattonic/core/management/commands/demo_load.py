from django.core.management.base import BaseCommand

from chattonic.demo import demo_load


class Command(BaseCommand):
    help = "Load the demo tenant (idempotent) and print its sign-in."

    def handle(self, *args, **options):
        demo = demo_load()
        self.stdout.write(
            f"Demo tenant {demo.tenant.name!r}: sign in as {demo.owner_email} / {demo.password}"
        )
