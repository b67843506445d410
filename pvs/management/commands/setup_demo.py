"""Load the demo registry (the simulated IOC's PVs), a few saved PV sets and the demo user; safe to
run again."""

import io

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from pvs import sim
from pvs.models import PVSet
from pvs.pv_sets import save_pv_set
from pvs.services import import_registry
from squirrel_site.audit import AuditVia
from tags.models import Tag

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "squirrel-demo"
# The demo's saved PV sets: (name, description, the (group, tag) pairs a PV must carry).
DEMO_PV_SETS = [
    ("Magnets", "Every magnet PV.", [("Subsystem", "Magnets")]),
    ("LINAC RF", "The RF PVs of the LINAC.", [("Area", "LINAC"), ("Subsystem", "RF")]),
]


class Command(BaseCommand):
    help = "Register the simulated IOC's PVs (as run_sim_ioc serves them) and create the demo admin user."

    def add_arguments(self, parser):
        parser.add_argument("--pvs", type=int, default=5000, help="number of PVs (match run_sim_ioc --pvs)")
        parser.add_argument("--prefix", default=settings.SIM_IOC_PREFIX, help="PV name prefix")
        parser.add_argument("--seed", type=int, default=0, help="the simulated IOC's seed")
        parser.add_argument(
            "--alarms", action="store_true", help="also register the PVs in alarm (match run_sim_ioc --alarms)"
        )

    def handle(self, *args, **options):
        try:
            database = sim.generate(
                options["pvs"], options["prefix"], options["seed"], settings.SIM_IOC_CHANGE_RATE_HZ, options["alarms"]
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        registry = io.StringIO()
        sim.write_registry_csv(database.pvs, registry)
        report = import_registry(
            "demo-registry.csv", registry.getvalue(), actor=None, via=AuditVia.COMMAND, dry_run=False
        )
        if not report.ok:
            raise CommandError(f"The demo registry did not import: {report.errors[0]}")
        self.stdout.write(
            f"Demo registry: {report.new} new, {report.updated} updated, {report.unchanged} unchanged PVs."
        )
        made = self.demo_pv_sets()
        self.stdout.write(f"Demo PV sets: {made} new.")
        user, created = get_user_model().objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        user.set_password(DEMO_PASSWORD)
        user.is_staff = user.is_superuser = True
        user.save()
        self.stdout.write(
            self.style.SUCCESS(f"Demo login: user {DEMO_USERNAME!r}, password {DEMO_PASSWORD!r}")
            + (" (created)" if created else "")
        )

    def demo_pv_sets(self) -> int:
        """Create the demo's PV sets that do not exist yet (a set of that name is left as it is)."""
        made = 0
        for name, description, tags in DEMO_PV_SETS:
            ids = [
                Tag.objects.filter(group__name=group, name=tag).values_list("pk", flat=True).first()
                for group, tag in tags
            ]
            if PVSet.objects.filter(name=name).exists() or None in ids:
                continue
            save_pv_set(
                PVSet(name=name, description=description, filters={"tag": ids}), actor=None, via=AuditVia.COMMAND
            )
            made += 1
        return made
