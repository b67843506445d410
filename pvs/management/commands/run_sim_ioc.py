"""Serve the simulated accelerator (pvs.sim) from a real EPICS 7 Channel Access IOC."""

import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from ctypes import addressof, c_char, c_char_p, c_double, c_int32, c_uint16
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pvs import sim
from squirrel_site.epics_values import MAX_STRING_SIZE

PVD_TABLE_SIZE = 65536  # the largest record-name hash table EPICS allows
AUTOSAVE_PERIOD = 5.0  # seconds, as autosave's create_periodic_set(..., 5) in an IOC's st.cmd


class Command(BaseCommand):
    help = "Run a Channel Access IOC serving simulated PVs (and optionally write their registry CSV)."

    def add_arguments(self, parser):
        parser.add_argument("--pvs", type=int, default=5000, help="number of registry PVs (default 5000)")
        parser.add_argument("--prefix", default=settings.SIM_IOC_PREFIX, help="PV name prefix")
        parser.add_argument("--seed", type=int, default=0, help="seed for names, values and delays")
        parser.add_argument(
            "--change-rate",
            type=float,
            default=settings.SIM_IOC_CHANGE_RATE_HZ,
            metavar="HZ",
            help="update rate of the continuously changing PVs (0 or an EPICS scan rate: 0.1-10 Hz)",
        )
        parser.add_argument(
            "--alarms",
            action="store_true",
            help="also serve the demo's PVs in alarm (MINOR, MAJOR, INVALID; one never connects): pvs.sim.ALARM_PVS",
        )
        parser.add_argument("--port", type=int, help="Channel Access server port (default: from the environment)")
        parser.add_argument("--registry-csv", metavar="FILE", help="write the PV registry CSV here before serving")
        parser.add_argument("--registry-only", action="store_true", help="write the registry CSV and exit")
        parser.add_argument("--ready-file", metavar="FILE", help="create this file once the IOC is serving")
        parser.add_argument(
            "--autosave",
            metavar="FILE",
            help="write the settings to this EPICS autosave .sav file, as an IOC with autosave does (docs/sim_ioc.md)",
        )
        parser.add_argument(
            "--autosave-period",
            type=float,
            default=AUTOSAVE_PERIOD,
            metavar="S",
            help=f"seconds between autosave writes (default {AUTOSAVE_PERIOD:g})",
        )

    def handle(self, *args, **options):
        if options["registry_only"] and not options["registry_csv"]:
            raise CommandError("--registry-only needs --registry-csv FILE")
        if options["port"] is not None and not 0 < options["port"] < 65536:
            raise CommandError(f"--port must be between 1 and 65535, not {options['port']}")
        if not options["autosave_period"] > 0:
            raise CommandError(f"--autosave-period must be positive, not {options['autosave_period']:g}")
        autosave_path = Path(options["autosave"]) if options["autosave"] else None
        if autosave_path is not None and not autosave_path.parent.is_dir():
            raise CommandError(f"--autosave: no directory {autosave_path.parent}")
        try:
            database = sim.generate(
                options["pvs"], options["prefix"], options["seed"], options["change_rate"], options["alarms"]
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None

        if options["registry_csv"]:
            write_registry(database, Path(options["registry_csv"]))
            self.stdout.write(f"Wrote {len(database.pvs)} PVs to {options['registry_csv']}")
        if options["registry_only"]:
            return

        port = set_server_port(options["port"])
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        start = time.monotonic()
        start_ioc(database)
        summary = f"{len(database.pvs)} PVs ({database.record_count} records)"
        autosaved = sim.autosave_pvs(database.pvs)
        del database  # the IOC holds its own copy; the Python one is ~100 MB at 50K PVs
        if autosave_path is not None:
            write_autosave(autosave_path, autosaved)  # the first file before "ready", as autosave at boot
            saver = threading.Thread(
                target=autosave_loop,
                args=(autosave_path, autosaved, options["autosave_period"], stop),
                name="autosave",
                daemon=True,
            )
            saver.start()
        ready_file = Path(options["ready_file"]) if options["ready_file"] else None
        if ready_file:
            ready_file.touch()
        self.stdout.write(
            f"Simulated IOC serving {summary} on CA port {port} (ready in {time.monotonic() - start:.1f} s)"
        )
        self.stdout.flush()
        stop.wait()
        if ready_file:
            ready_file.unlink(missing_ok=True)
        self.stdout.write("Simulated IOC stopped")


def autosave_loop(path: Path, pvs: list[tuple[str, str, bool]], period: float, stop: threading.Event) -> None:
    """Write the .sav file every `period` seconds until `stop` (autosave's periodic set)."""
    while not stop.wait(period):
        write_autosave(path, pvs)


def write_autosave(path: Path, pvs: list[tuple[str, str, bool]]) -> None:
    """Read every autosaved PV from the IOC's database and replace `path` atomically, keeping the
    previous good file as `<path>B` (autosave's .savB): a reader sees the old file or the new one,
    never half of one, as autosave's restore relies on."""
    text = sim.autosave_text([(name, read_field(name, dbf, array)) for name, dbf, array in pvs], time.time())
    partial = path.with_name(path.name + ".tmp")
    with partial.open("w", encoding="utf-8") as fileobj:
        fileobj.write(text)
        fileobj.flush()
        os.fsync(fileobj.fileno())
    if path.exists():
        backup = path.with_name(path.name + "B.tmp")
        shutil.copyfile(path, backup)
        os.replace(backup, path.with_name(path.name + "B"))
    os.replace(partial, path)


def read_field(name: str, dbf: str, array: bool):
    """A record's value from the IOC's own database (dbGetField, as autosave reads it at boot);
    None if the record cannot be read."""
    from softioc import fields, imports

    code = getattr(fields, f"DBF_{dbf}")
    try:
        if array:
            count = c_int32()
            imports.db_get_field(f"{name}.NORD", fields.DBF_LONG, addressof(count), 1)
            size = max(count.value, 0)
            if dbf == "STRING":
                strings = (c_char * MAX_STRING_SIZE * size)()
                if size:
                    imports.db_get_field(name, code, addressof(strings), size)
                return [element.value.decode("utf-8", "replace") for element in strings]
            numbers = (c_double * size)()
            if size:
                imports.db_get_field(name, code, addressof(numbers), size)
            return list(numbers)
        if dbf == "STRING":
            text = (c_char * MAX_STRING_SIZE)()
            imports.db_get_field(name, code, addressof(text), 1)
            return text.value.decode("utf-8", "replace")
        scalar = {"DOUBLE": c_double, "LONG": c_int32, "ENUM": c_uint16}[dbf]()
        imports.db_get_field(name, code, addressof(scalar), 1)
        return scalar.value
    except RuntimeError:  # softioc's report of a failed dbNameToAddr/dbGetField: autosave's "not connected"
        return None


def write_registry(database: sim.SimDatabase, path: Path) -> None:
    """Write the registry CSV, failing with one line if the file cannot be written."""
    try:
        with path.open("w", newline="", encoding="utf-8") as fileobj:
            sim.write_registry_csv(database.pvs, fileobj)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}") from None


def set_server_port(port: int | None) -> int:
    """Point the IOC's CA server at `port` (or the environment's) and check nobody serves there."""
    if port is not None:
        # rsrv prefers EPICS_CAS_SERVER_PORT over EPICS_CA_SERVER_PORT: set both.
        os.environ["EPICS_CA_SERVER_PORT"] = os.environ["EPICS_CAS_SERVER_PORT"] = str(port)
    port = int(os.environ.get("EPICS_CAS_SERVER_PORT") or os.environ.get("EPICS_CA_SERVER_PORT") or 5064)
    # rsrv would fall back to a random TCP port sharing the UDP port with the other IOC, and
    # unicast searches (EPICS_CA_ADDR_LIST=127.0.0.1) would then reach only one of the two.
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", port))
    except OSError:
        raise CommandError(f"CA port {port} is already in use (another IOC?); choose one with --port") from None
    finally:
        probe.close()
    return port


def start_ioc(database: sim.SimDatabase) -> None:
    """Load the records and access security, start the IOC, then put the array values."""
    # Imported here: loading softioc loads the EPICS libraries, which only serving needs.
    from epicscorelibs.ioc import dbCore

    # Record names live in a hash table of 512 buckets by default: finding a name among 150K
    # records then dominates the load (5 s instead of 1 s). The size is fixed when importing
    # softioc loads its dbd, so it must be set before that import.
    dbCore.dbPvdTableSize(PVD_TABLE_SIZE)
    from softioc import asyncio_dispatcher, fields, imports, softioc

    with tempfile.TemporaryDirectory(prefix="squirrel-sim-") as tmp:
        db_path, acf_path = Path(tmp, "sim.db"), Path(tmp, "sim.acf")
        db_path.write_text(database.db_text)
        acf_path.write_text(database.acf_text)
        softioc.dbLoadDatabase(str(db_path))
        as_set_filename = imports.dbCore.asSetFilename
        as_set_filename.argtypes = (c_char_p,)
        as_set_filename(str(acf_path).encode())
        # Every setpoint put (and every PINI at start) queues a delayed readback callback; a
        # restore of all PVs at once would overflow the default 2000-entry queue, and a lost
        # callback leaves its delay record busy forever.
        imports.callbackSetQueueSize(database.record_count + 2000)
        # PV Access stays off: it would open more network endpoints than the tests expect.
        softioc.iocInit(asyncio_dispatcher.AsyncioDispatcher(), enable_pva=False)
    for name, values in database.array_values:
        buffer = (c_double * len(values))(*values)
        imports.db_put_field_process(name, fields.DBF_DOUBLE, addressof(buffer), len(values), True)
    for name, texts in database.string_array_values:
        strings = (c_char * MAX_STRING_SIZE * len(texts))()
        for element, text in zip(strings, texts, strict=True):
            element.value = text.encode()
        imports.db_put_field_process(name, fields.DBF_STRING, addressof(strings), len(texts), True)
