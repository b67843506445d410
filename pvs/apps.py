from django.apps import AppConfig


class PvsConfig(AppConfig):
    name = "pvs"
    verbose_name = "PV registry"

    def ready(self):
        # PVs losing tags that are deleted move their updated_at (tags know no PV).
        from pvs.services import touch_pvs_losing_tags
        from tags.services import tags_deleting

        tags_deleting.connect(touch_pvs_losing_tags, dispatch_uid="pvs.touch_pvs_losing_tags")
