"""Export the PV registry, or the PVs carrying given tags, as registry CSV or a .req file."""

from django.core.management.base import BaseCommand, CommandError

from pvs.exporters import export_pvs_csv, export_pvs_req
from pvs.models import PV
from tags.models import Tag


class Command(BaseCommand):
    help = (
        "Write the PV registry as CSV, or its setpoint addresses as a .req file (formats import_pvs "
        "reads), to FILE or stdout."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", default="-", help="Output file; '-' (default) is stdout.")
        parser.add_argument(
            "--tag",
            action="append",
            default=[],
            metavar="GROUP:TAG",
            help="Only PVs carrying this tag; repeat to require several tags.",
        )
        parser.add_argument(
            "--format",
            dest="file_format",
            choices=["csv", "req"],
            help="csv (every field and tag) or req (setpoint addresses only); "
            "by default req for a FILE ending in .req, else csv.",
        )

    def handle(self, *args, file, tag, file_format, **options):
        pvs = PV.objects.all()
        for label in tag:
            pvs = pvs.filter(tags=self._tag(label))
        if file_format is None:
            file_format = "req" if file.lower().endswith(".req") else "csv"
        export = export_pvs_req if file_format == "req" else export_pvs_csv
        if file == "-":
            count = export(pvs, self.stdout)
            self.stderr.write(f"Exported {count} PVs.")
            return
        try:
            with open(file, "w", newline="", encoding="utf-8") as stream:
                count = export(pvs, stream)
        except OSError as error:
            raise CommandError(f"Cannot write {file}: {error.strerror}.") from None
        self.stdout.write(f"Exported {count} PVs to {file}.")

    @staticmethod
    def _tag(label: str) -> Tag:
        group, colon, name = label.partition(":")
        if not colon:
            raise CommandError(f"--tag expects GROUP:TAG, got {label!r}.")
        tag = Tag.objects.filter(group__name=group.strip(), name=name.strip()).first()
        if tag is None:
            raise CommandError(f"No tag {name.strip()!r} in tag group {group.strip()!r}.")
        return tag
