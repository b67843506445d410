"""Export the PV registry, or the PVs carrying given tags, as registry CSV."""

from django.core.management.base import BaseCommand, CommandError

from pvs.exporters import export_pvs_csv
from pvs.models import PV
from tags.models import Tag


class Command(BaseCommand):
    help = "Write the PV registry as CSV (the format import_pvs reads) to FILE or stdout."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", default="-", help="Output file; '-' (default) is stdout.")
        parser.add_argument(
            "--tag",
            action="append",
            default=[],
            metavar="GROUP:TAG",
            help="Only PVs carrying this tag; repeat to require several tags.",
        )

    def handle(self, *args, file, tag, **options):
        pvs = PV.objects.all()
        for label in tag:
            pvs = pvs.filter(tags=self._tag(label))
        if file == "-":
            count = export_pvs_csv(pvs, self.stdout)
            self.stderr.write(f"Exported {count} PVs.")
            return
        try:
            with open(file, "w", newline="", encoding="utf-8") as stream:
                count = export_pvs_csv(pvs, stream)
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
