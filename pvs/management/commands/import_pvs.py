"""Import a registry file (CSV or .req) from the command line; includes resolve on disk."""

import argparse
import os

from django.core.management.base import BaseCommand, CommandError

from pvs.importers import MACRO_NAME_RE, ImportReport, filesystem_include_loader
from pvs.services import import_registry
from squirrel_site.audit import AuditVia


def macro_definition(text: str) -> tuple[str, str]:
    """Parse NAME=VALUE for --macro."""
    name, has_value, value = text.partition("=")
    if not has_value or not MACRO_NAME_RE.fullmatch(name):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def format_report(report: ImportReport, *, dry_run: bool) -> list[str]:
    """The report's summary lines: counts, new tags, and what happened."""
    lines = [f"{report.new} new, {report.updated} updated, {report.unchanged} unchanged PVs."]
    if report.new_tags:
        lines.append(f"New tags: {', '.join(report.new_tags)}")
    if dry_run:
        lines.append("Dry run: nothing was written.")
    elif not report.applied:
        lines.append("Nothing to change.")
    return lines


class Command(BaseCommand):
    help = "Import PVs into the registry from a CSV file (SLAC's format) or an EPICS .req file."

    def add_arguments(self, parser):
        parser.add_argument("file", help="A .csv or .req file; .req includes are read beside it.")
        parser.add_argument("--dry-run", action="store_true", help="Check and report; write nothing.")
        parser.add_argument(
            "--macro",
            action="append",
            default=[],
            type=macro_definition,
            metavar="NAME=VALUE",
            help="A macro for .req files (repeat for several).",
        )

    def handle(self, *args, file, dry_run, macro, **options):
        path = os.path.normpath(file)
        try:
            with open(path, "rb") as stream:
                content = stream.read()
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}.") from None
        report = import_registry(
            path,
            content,
            actor=None,
            via=AuditVia.COMMAND,
            dry_run=dry_run,
            macros=dict(macro),
            include_loader=filesystem_include_loader,
        )
        if report.errors:
            for problem in report.errors:
                self.stderr.write(str(problem))
            count = len(report.errors)
            raise CommandError(f"{count} error{'s' if count != 1 else ''}; nothing imported")
        for line in format_report(report, dry_run=dry_run):
            self.stdout.write(line)
