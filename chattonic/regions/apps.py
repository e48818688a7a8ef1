from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ids_in_region_block(sender, using="default", **kwargs):
    from chattonic.regions.sequences import sequences_raise

    sequences_raise(using=using)


class RegionsConfig(AppConfig):
    name = "chattonic.regions"
    label = "regions"
    verbose_name = "Regions"

    def ready(self):
        # After every migrate (a new table too), every table's next id is in this region's
        # block: the ids a deployment hands out name its region.
        post_migrate.connect(
            _ids_in_region_block, sender=self, dispatch_uid="chattonic.regions.sequences"
        )
