from django.core.management.base import BaseCommand

from chattonic.demo import demo_load


class Command(BaseCommand):
    help = "Load the demo tenant (idempotent) and print its sign-in."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default="http://localhost:8000",
            help="Where the platform is served; the demo bot's order lookup calls it.",
        )

    def handle(self, *args, base_url, **options):
        demo = demo_load(base_url)
        self.stdout.write(
            f"Demo tenant {demo.tenant.name!r} with the bot {demo.bot.name!r}: sign in as "
            f"{demo.owner_email} or {demo.agent_email}, password {demo.password}"
        )
