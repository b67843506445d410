"""Load the demo registry (the simulated IOC's PVs, and the simulated pvAccess server's as
``pva://`` addresses), a few saved PV sets and the demo user; safe to run again."""

import csv
import io

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from pvs import sim, sim_pva
from pvs.models import PVSet
from pvs.protocols import PVA_PREFIX
from pvs.pv_sets import save_pv_set
from pvs.services import import_registry
from squirrel_site.audit import AuditVia
from tags.models import Tag

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "squirrel-demo"
# The demo's saved PV sets: (name, description, the (group, tag) pairs a PV must carry).
# The pvAccess PVs' tag: the demo's Channel Access PVs carry Area and Subsystem tags of a machine,
# the pvAccess set has none of its own.
PVA_SUBSYSTEM = "pvAccess"
PVA_DESCRIPTIONS = {
    sim_pva.DOUBLE: "pvAccess NTScalar double",
    sim_pva.INT: "pvAccess NTScalar integer",
    sim_pva.BOOL: "pvAccess NTScalar boolean",
    sim_pva.STRING: "pvAccess NTScalar string",
    sim_pva.DOUBLE_ARRAY: "pvAccess NTScalarArray of doubles",
    sim_pva.STRING_ARRAY: "pvAccess NTScalarArray of strings",
    sim_pva.ENUM: "pvAccess NTEnum",
    sim_pva.TABLE: "pvAccess NTTable (saved and compared, never written)",
}
DEMO_PV_SETS = [
    ("Magnets", "Every magnet PV.", [("Subsystem", "Magnets")]),
    ("LINAC RF", "The RF PVs of the LINAC.", [("Area", "LINAC"), ("Subsystem", "RF")]),
]


class Command(BaseCommand):
    help = (
        "Register the simulated IOC's PVs (as run_sim_ioc serves them) and the simulated pvAccess server's "
        "(as run_sim_pva serves them), and create the demo admin user."
    )

    def add_arguments(self, parser):
        parser.add_argument("--pvs", type=int, default=5000, help="number of PVs (match run_sim_ioc --pvs)")
        parser.add_argument("--prefix", default=settings.SIM_IOC_PREFIX, help="PV name prefix")
        parser.add_argument("--seed", type=int, default=0, help="the simulated IOC's seed")
        parser.add_argument(
            "--alarms", action="store_true", help="also register the PVs in alarm (match run_sim_ioc --alarms)"
        )
        parser.add_argument(
            "--pva-pvs",
            type=int,
            default=0,
            help=f"also register this many pvAccess PVs (match run_sim_pva --pvs; 0 or at least {sim_pva.MIN_PVS})",
        )

    def handle(self, *args, **options):
        try:
            database = sim.generate(
                options["pvs"], options["prefix"], options["seed"], settings.SIM_IOC_CHANGE_RATE_HZ, options["alarms"]
            )
            pva_pvs = (
                sim_pva.generate(options["pva_pvs"], options["prefix"], options["seed"]) if options["pva_pvs"] else []
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        registry = io.StringIO()
        sim.write_registry_csv(database.pvs, registry)
        write_pva_rows(pva_pvs, registry)
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


def write_pva_rows(pvs: list[sim_pva.SimPV], fileobj) -> None:
    """The simulated pvAccess PVs as rows of the registry CSV (sim.CSV_HEADER), ``pva://`` addresses;
    the table read-only (a structure is saved and compared, never written)."""
    writer = csv.writer(fileobj, lineterminator="\n")
    for pv in pvs:
        device = pv.name.rsplit(":", 1)[0].removeprefix(settings.SIM_IOC_PREFIX)
        read_only = "true" if pv.type == sim_pva.TABLE else "false"
        writer.writerow(
            [
                PVA_PREFIX + pv.name,
                "",
                PVA_DESCRIPTIONS[pv.type],
                "",
                device,
                "",
                "",
                read_only,
                "0",
                "true",
                "",
                PVA_SUBSYSTEM,
            ]
        )
