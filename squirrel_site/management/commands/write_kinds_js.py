"""Write static/squirrel/kinds.js from squirrel_site/epics_values.py (the kinds' one source)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from squirrel_site import epics_values


class Command(BaseCommand):
    help = "Write static/squirrel/kinds.js, the value kinds live.js compares by, from squirrel_site/epics_values.py."

    def handle(self, *args, **options):
        path = Path(settings.BASE_DIR) / epics_values.JS_MODULE_PATH
        path.write_text(epics_values.js_module())
        self.stdout.write(f"wrote {path}")
