"""The simulated accelerator served by `run_sim_ioc`: EPICS records plus the matching PV registry.

Pure and deterministic: the same (count, prefix, seed, change rate) always gives the same records,
access-security file, registry rows and array values. Nothing here imports softioc or epics.

Every PV is built from plain EPICS records (never softioc's Python builder, which is far slower):

- pair / protected: `ao` setpoint, `calc` readback, `calcout` delay (3 records). Writing the
  setpoint forward-links to the delay record, which after ODLY (0.1-0.5 s) processes the readback;
  the readback reads the setpoint *at that moment* and adds noise well below the PV's tolerance.
  A put arriving while the delay is pending is dropped by the busy calcout (EPICS skips active
  records), but the readback still reads the latest setpoint when the delay ends, and the next
  put compares setpoint and readback afresh, so the readback always settles on the last value
  written. Protected setpoints sit in a read-only ASG.
- readonly: `ai` with a constant input; changing: `calc` scanned at the change rate with noise.
- int: `longout`; enum: `mbbo`; string: `stringout`; waveform: `waveform` of DOUBLE, whose values
  are put after iocInit (a long initializer overflows the db parser); string waveform: `waveform`
  of STRING (a list of names), also put after iocInit.
- Dipole current pairs also have a per-device `ao` calibration record as their config address.
- With `alarms` (the demo: `run_sim_ioc --alarms`, `setup_demo --alarms`), a few more read-only
  PVs are in alarm for good (ALARM_PVS): `ai` records past their HIGH (MINOR) or HIHI (MAJOR)
  limit, one in simulation mode with SIMS INVALID, and one registry PV that no record serves, so it
  never connects. They are extra PVs: the others, and the tests' IOC (no alarms), are unchanged.

Nothing scans at idle except the changing PVs (about 2%), so a 50K-PV IOC stays quiet.
"""

import csv
import math
import random
import time
from dataclasses import dataclass, field

PAIR = "pair"
PROTECTED = "protected"
READONLY = "readonly"
CHANGING = "changing"
INT = "int"
ENUM = "enum"
STRING = "string"
WAVEFORM = "waveform"
STRING_WAVEFORM = "string_waveform"
ALARM = "alarm"  # read-only, in alarm for good (generate(alarms=True) only)
OFFLINE = "offline"  # in the registry, served by no record: never connects (alarms=True only)

# Share of the PVs per kind; pairs take whatever is left. Every kind gets at least one PV.
KIND_SHARES = {
    READONLY: 0.12,
    INT: 0.08,
    ENUM: 0.07,
    STRING: 0.04,
    CHANGING: 0.02,
    PROTECTED: 0.01,
    WAVEFORM: 0.005,
    STRING_WAVEFORM: 0.00004,  # one or two: every kind gets at least one PV
}
MIN_PVS = len(KIND_SHARES) + 1

AREAS = ("LINAC", "BC1", "L2", "UND")
# Consecutive devices of one type share an area; the last device of each block sits on the
# boundary and carries two area tags.
AREA_BLOCK = 10

# menuScan's periodic choices, by rate in Hz (EPICS cannot scan at other periods without a
# custom dbd). A rate of 0 leaves the changing PVs still.
SCAN_BY_RATE = {
    10.0: ".1 second",
    5.0: ".2 second",
    2.0: ".5 second",
    1.0: "1 second",
    0.5: "2 second",
    0.2: "5 second",
    0.1: "10 second",
}

PROTECTED_ASG = "PROTECTED"
ACF_TEXT = f"""\
# Access security for the simulated IOC: everything writable except the {PROTECTED_ASG} group.
ASG(DEFAULT) {{
    RULE(1, READ)
    RULE(1, WRITE)
}}
ASG({PROTECTED_ASG}) {{
    RULE(1, READ)
}}
"""

CSV_HEADER = (
    "Setpoint",
    "Readback",
    "Description",
    "Config",
    "Device",
    "Abs Tolerance",
    "Rel Tolerance",
    "Read Only",
    "Restore Stage",
    "Wait For Completion",
    "Area",
    "Subsystem",
)


@dataclass(frozen=True)
class Signal:
    """One kind of quantity on one type of device, e.g. a quadrupole's current."""

    subsystem: str  # the Subsystem tag
    code: str  # the subsystem's segment in the PV name
    device_type: str  # device name prefix, e.g. "Q" for Q0012
    device_label: str
    name: str  # signal name, e.g. "I" for I_SP / I_RB
    label: str
    egu: str = ""
    low: float = 0.0
    high: float = 1.0
    prec: int = 3
    abs_tolerance: float = 0.0
    rel_tolerance: float = 0.0
    restore_stage: int = 0
    wait_for_completion: bool = False
    has_config: bool = False
    labels: tuple[str, ...] = ()  # enum states
    texts: tuple[str, ...] = ()  # string choices
    nelm: tuple[int, int] = (0, 0)  # waveform length range
    log_scale: bool = False  # values spread over decades (pressures)


def _mag(device_type, device_label, name, label, **kw):
    defaults = dict(egu="A", prec=3, abs_tolerance=0.01, restore_stage=2, wait_for_completion=True)
    return Signal("Magnets", "MAG", device_type, device_label, name, label, **(defaults | kw))


# Each kind cycles through its signals in order; a signal's n-th PV lands on device n.
# (device_type, name) is unique across the whole catalogue, so PV names never collide.
CATALOGUE = {
    PAIR: (
        # Listed twice: quadrupoles are the most common magnets (both share one numbering).
        _mag("Q", "Quadrupole", "I", "current", low=-40, high=40),
        _mag("Q", "Quadrupole", "I", "current", low=-40, high=40),
        _mag("XC", "Horizontal corrector", "I", "current", low=-5, high=5),
        _mag("YC", "Vertical corrector", "I", "current", low=-5, high=5),
        _mag("B", "Dipole", "I", "current", low=100, high=400, has_config=True),
        Signal("RF", "RF", "K", "Klystron", "AMPL", "amplitude", "MV", 10, 60, 3, 0.05, restore_stage=1),
        Signal("RF", "RF", "K", "Klystron", "PHAS", "phase", "deg", -180, 180, 2, 0.1, restore_stage=1),
        Signal("Vacuum", "VAC", "IP", "Ion pump", "V", "voltage", "kV", 3, 7, 3, 0.01),
        Signal("Timing", "TIM", "TRG", "Trigger", "DELAY", "delay", "ns", 0, 5000, 1, 0.5),
        Signal(
            "Diagnostics",
            "DIAG",
            "PROF",
            "Profile monitor",
            "POS",
            "actuator position",
            "mm",
            0,
            100,
            3,
            0.01,
            restore_stage=3,
        ),
    ),
    PROTECTED: (
        _mag("Q", "Quadrupole", "ILIM", "current limit (interlocked)", low=40, high=60),
        Signal(
            "RF", "RF", "K", "Klystron", "PWR_LIM", "power limit (interlocked)", "MW", 20, 80, 2, 0.1, restore_stage=1
        ),
    ),
    READONLY: (
        Signal(
            "Vacuum",
            "VAC",
            "VGC",
            "Vacuum gauge",
            "P",
            "pressure",
            "Torr",
            1e-9,
            1e-7,
            2,
            rel_tolerance=0.5,
            log_scale=True,
        ),
        Signal("Magnets", "MAG", "Q", "Quadrupole", "TEMP", "coil temperature", "degC", 25, 45, 1, 1.0),
        Signal("RF", "RF", "K", "Klystron", "FWD_PWR", "forward power", "MW", 10, 60, 2, 1.0),
        Signal(
            "Diagnostics",
            "DIAG",
            "BPM",
            "Beam position monitor",
            "TMIT",
            "charge",
            "pC",
            100,
            250,
            1,
            rel_tolerance=0.05,
        ),
        Signal("Timing", "TIM", "EVR", "Event receiver", "RATE", "trigger rate", "Hz", 120, 120, 1, 0.1),
    ),
    CHANGING: (
        Signal(
            "Diagnostics", "DIAG", "BPM", "Beam position monitor", "X", "horizontal position", "mm", -0.5, 0.5, 3, 0.1
        ),
        Signal(
            "Diagnostics", "DIAG", "BPM", "Beam position monitor", "Y", "vertical position", "mm", -0.5, 0.5, 3, 0.1
        ),
        Signal(
            "Vacuum",
            "VAC",
            "VGC",
            "Vacuum gauge",
            "P_LIVE",
            "live pressure",
            "Torr",
            1e-9,
            1e-7,
            2,
            rel_tolerance=0.5,
            log_scale=True,
        ),
    ),
    INT: (
        Signal("Timing", "TIM", "EVR", "Event receiver", "EVENT_CODE", "event code", low=1, high=255),
        Signal("Timing", "TIM", "TRG", "Trigger", "WIDTH", "pulse width", "ticks", 1, 1000),
        Signal(
            "Diagnostics", "DIAG", "BPM", "Beam position monitor", "ATTN", "attenuation", "dB", 0, 31, restore_stage=3
        ),
        Signal("Magnets", "MAG", "Q", "Quadrupole", "CYCLES", "standardisation cycles", low=1, high=5, restore_stage=2),
    ),
    ENUM: (
        Signal(
            "Magnets",
            "MAG",
            "Q",
            "Quadrupole",
            "STATE",
            "power state",
            restore_stage=2,
            labels=("Off", "On", "Standby", "Degauss"),
        ),
        Signal(
            "RF",
            "RF",
            "K",
            "Klystron",
            "MODE",
            "mode",
            restore_stage=1,
            labels=("Off", "Standby", "Accelerate", "Conditioning"),
        ),
        Signal("Vacuum", "VAC", "VV", "Valve", "CMD", "command", labels=("Close", "Open")),
        Signal(
            "Diagnostics",
            "DIAG",
            "PROF",
            "Profile monitor",
            "SCREEN",
            "screen",
            restore_stage=3,
            labels=("Out", "YAG", "OTR"),
        ),
        Signal("Timing", "TIM", "TRG", "Trigger", "POL", "polarity", labels=("Normal", "Inverted")),
    ),
    STRING: (
        Signal(
            "Timing",
            "TIM",
            "TRG",
            "Trigger",
            "LABEL",
            "label",
            texts=("Gun laser", "Kicker", "Camera", "Scope", "BPM sync", "Spare"),
        ),
        Signal(
            "Diagnostics",
            "DIAG",
            "BPM",
            "Beam position monitor",
            "LABEL",
            "label",
            restore_stage=3,
            texts=("Injector", "Dogleg", "Chicane", "Matching", "Dump line"),
        ),
        Signal(
            "RF",
            "RF",
            "K",
            "Klystron",
            "NOTE",
            "operator note",
            restore_stage=1,
            texts=("nominal", "conditioning", "spare tube", "watch VSWR"),
        ),
    ),
    STRING_WAVEFORM: (
        Signal(
            "Timing",
            "TIM",
            "EVR",
            "Event receiver",
            "OUT_NAMES",
            "output names",
            restore_stage=1,
            texts=("Gun laser", "Kicker", "Camera", "Scope", "BPM sync", "Spare", "RF sync", "Dump"),
            nelm=(4, 8),
        ),
    ),
    WAVEFORM: (
        Signal(
            "Diagnostics",
            "DIAG",
            "PROF",
            "Profile monitor",
            "PROFILE_REF",
            "reference profile",
            "counts",
            0,
            1000,
            2,
            1e-6,
            restore_stage=3,
            nelm=(100, 500),
        ),
        Signal(
            "RF",
            "RF",
            "K",
            "Klystron",
            "FF_TABLE",
            "feed-forward table",
            "MV",
            -1,
            1,
            4,
            1e-6,
            restore_stage=1,
            nelm=(500, 1000),
        ),
    ),
}


@dataclass(frozen=True)
class AlarmPV:
    """A read-only PV the demo keeps in alarm: its signal, value, and the record fields that put it
    there (`fields` None: no record serves it)."""

    severity: str  # as EPICS names it: MINOR, MAJOR, INVALID; "" for a PV that never connects
    signal: Signal
    value: float
    fields: dict | None


# Device numbers 1 of existing device types (so tags and areas look like the rest), with signal
# names no other kind uses, so the names never collide with the generated PVs.
ALARM_PVS = (
    AlarmPV(
        "MINOR",
        Signal("Vacuum", "VAC", "IP", "Ion pump", "CUR", "current (over its warning limit)", "uA", prec=1),
        212.0,
        {"HIGH": "150", "HSV": "MINOR"},
    ),
    AlarmPV(
        "MAJOR",
        Signal("Magnets", "MAG", "Q", "Quadrupole", "TEMP_COIL2", "coil 2 temperature (overheated)", "degC", prec=1),
        71.5,
        {"HIGH": "50", "HSV": "MINOR", "HIHI": "65", "HHSV": "MAJOR"},
    ),
    AlarmPV(
        "INVALID",
        Signal("RF", "RF", "K", "Klystron", "REFL_PWR", "reflected power (sensor invalid)", "kW", prec=2),
        0.0,
        # Simulation mode reads SIOL (a constant here) and raises SIMM_ALARM with severity SIMS.
        {"SIMM": "YES", "SIOL": "0", "SIMS": "INVALID"},
    ),
    AlarmPV(
        "",
        Signal("Diagnostics", "DIAG", "BPM", "Beam position monitor", "TMIT_SPARE", "spare charge input (not served)"),
        0.0,
        None,
    ),
)


@dataclass(frozen=True)
class SimPV:
    """One registry PV of the simulated IOC, with the value the IOC starts with."""

    kind: str
    setpoint: str
    readback: str
    config: str
    device: str
    description: str
    abs_tolerance: float
    rel_tolerance: float
    read_only: bool
    restore_stage: int
    wait_for_completion: bool
    areas: tuple[str, ...]
    subsystems: tuple[str, ...]
    value: float | int | str | tuple[float, ...] | tuple[str, ...]
    egu: str = ""
    prec: int = 3
    labels: tuple[str, ...] = ()
    noise: float = 0.0  # peak readback noise (pairs) or variation (changing PVs)
    delay: float = 0.0  # readback delay in seconds (pairs)

    def csv_row(self) -> list[str]:
        """This PV as a row of the registry CSV (see CSV_HEADER)."""
        return [
            self.setpoint,
            self.readback,
            self.description,
            self.config,
            self.device,
            _number(self.abs_tolerance),
            _number(self.rel_tolerance),
            _bool(self.read_only),
            str(self.restore_stage),
            _bool(self.wait_for_completion),
            ",".join(self.areas),
            ",".join(self.subsystems),
        ]


@dataclass(frozen=True)
class SimDatabase:
    """Everything the simulated IOC serves, ready to load."""

    pvs: list[SimPV]
    db_text: str
    acf_text: str
    record_count: int
    # (record name, values) to put after iocInit
    array_values: list[tuple[str, tuple[float, ...]]] = field(default_factory=list)
    string_array_values: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[SimPV]:
        """The PVs of one kind, in registry order."""
        return [pv for pv in self.pvs if pv.kind == kind]


def scan_for_rate(rate_hz: float) -> str:
    """The SCAN value for the changing PVs at `rate_hz`; ValueError for an unsupported rate."""
    if rate_hz == 0:
        return "Passive"
    for rate, scan in SCAN_BY_RATE.items():
        if math.isclose(rate, rate_hz, rel_tol=1e-6):
            return scan
    allowed = ", ".join(f"{r:g}" for r in sorted(SCAN_BY_RATE))
    raise ValueError(f"change rate must be 0 or one of {allowed} Hz (EPICS scan periods), not {rate_hz:g}")


def kind_counts(count: int) -> dict[str, int]:
    """How many PVs of each kind a simulation of `count` PVs has."""
    if count < MIN_PVS:
        raise ValueError(f"the simulation needs at least {MIN_PVS} PVs, not {count}")
    counts = {kind: max(1, round(count * share)) for kind, share in KIND_SHARES.items()}
    return {PAIR: count - sum(counts.values()), **counts}


def generate(
    count: int, prefix: str = "SIM:", seed: int = 0, change_rate: float = 1.0, alarms: bool = False
) -> SimDatabase:
    """The records, access security, registry and array values of a simulated IOC; with `alarms`,
    ALARM_PVS too (beyond `count`)."""
    scan = scan_for_rate(change_rate)
    rng = random.Random(seed)
    pvs = sorted(
        (pv for kind, n in kind_counts(count).items() for pv in _build_kind(kind, n, prefix, rng)),
        key=lambda pv: pv.setpoint,
    )
    records = []
    for pv in pvs:
        records.extend(_records(pv, scan))
    if alarms:
        alarm_pvs = [(_alarm_pv(alarm, prefix), alarm) for alarm in ALARM_PVS]
        records.extend(_alarm_record(pv, alarm) for pv, alarm in alarm_pvs if alarm.fields is not None)
        pvs = sorted(pvs + [pv for pv, _ in alarm_pvs], key=lambda pv: pv.setpoint)
    configs = sorted({pv.config for pv in pvs if pv.config})
    records.extend(_record("ao", name, DESC="Calibration factor", PREC=4, VAL="1.0", PINI="YES") for name in configs)
    arrays = [(pv.setpoint, pv.value) for pv in pvs if pv.kind == WAVEFORM]
    strings = [(pv.setpoint, pv.value) for pv in pvs if pv.kind == STRING_WAVEFORM]
    return SimDatabase(pvs, "".join(records), ACF_TEXT, len(records), arrays, strings)


def write_registry_csv(pvs: list[SimPV], fileobj) -> None:
    """Write the registry CSV (SLAC's columns plus the Area and Subsystem tag groups)."""
    writer = csv.writer(fileobj, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(pv.csv_row() for pv in pvs)


def _build_kind(kind: str, n: int, prefix: str, rng: random.Random) -> list[SimPV]:
    signals = CATALOGUE[kind]
    next_device: dict[tuple[str, str], int] = {}
    pvs = []
    for i in range(n):
        signal = signals[i % len(signals)]
        key = (signal.device_type, signal.name)
        number = next_device[key] = next_device.get(key, 0) + 1
        pvs.append(_build_pv(kind, signal, number, prefix, rng))
    return pvs


def _build_pv(kind: str, signal: Signal, number: int, prefix: str, rng: random.Random) -> SimPV:
    device = f"{signal.code}:{signal.device_type}{number:04d}"
    base = f"{prefix}{device}:{signal.name}"
    block = (number - 1) // AREA_BLOCK
    areas = (AREAS[block % len(AREAS)],)
    if number % AREA_BLOCK == 0:
        areas += (AREAS[(block + 1) % len(AREAS)],)
    setpoint, readback = base, ""
    if kind in (PAIR, PROTECTED):
        setpoint, readback = f"{base}_SP", f"{base}_RB"
    description = f"{signal.device_label} {signal.device_type}{number:04d} {signal.label}"
    noise = delay = 0.0
    if kind in (PAIR, PROTECTED, READONLY, CHANGING):
        value = _uniform(rng, signal)
        if kind != READONLY:
            # A tenth of the tolerance: a restore's readback verification must succeed.
            noise = (signal.abs_tolerance or signal.rel_tolerance * abs(value)) / 10
        if kind in (PAIR, PROTECTED):
            delay = round(rng.uniform(0.1, 0.5), 2)
    elif kind == INT:
        value = rng.randint(int(signal.low), int(signal.high))
    elif kind == ENUM:
        value = rng.randrange(len(signal.labels))
    elif kind == STRING:
        value = f"{rng.choice(signal.texts)} {number}"
    elif kind == STRING_WAVEFORM:
        value = tuple(rng.sample(signal.texts, rng.randint(*signal.nelm)))
    else:
        value = _array(rng, signal)
    return SimPV(
        kind=kind,
        setpoint=setpoint,
        readback=readback,
        config=f"{prefix}{device}:CAL" if signal.has_config and kind == PAIR else "",
        device=device,
        description=description,
        abs_tolerance=signal.abs_tolerance,
        rel_tolerance=signal.rel_tolerance,
        read_only=kind in (READONLY, CHANGING),
        restore_stage=signal.restore_stage,
        wait_for_completion=signal.wait_for_completion,
        areas=areas,
        subsystems=(signal.subsystem,),
        value=value,
        egu=signal.egu,
        prec=signal.prec,
        labels=signal.labels,
        noise=noise,
        delay=delay,
    )


def _alarm_pv(alarm: AlarmPV, prefix: str) -> SimPV:
    signal = alarm.signal
    device = f"{signal.code}:{signal.device_type}0001"
    return SimPV(
        kind=ALARM if alarm.fields is not None else OFFLINE,
        setpoint=f"{prefix}{device}:{signal.name}",
        readback="",
        config="",
        device=device,
        description=f"{signal.device_label} {signal.device_type}0001 {signal.label}",
        abs_tolerance=0.0,
        rel_tolerance=0.0,
        read_only=True,
        restore_stage=signal.restore_stage,
        wait_for_completion=False,
        areas=(AREAS[0],),
        subsystems=(signal.subsystem,),
        value=alarm.value,
        egu=signal.egu,
        prec=signal.prec,
    )


def _alarm_record(pv: SimPV, alarm: AlarmPV) -> str:
    fields = dict(DESC=pv.description[:40], INP=_number(pv.value), PINI="YES", EGU=pv.egu, PREC=pv.prec)
    return _record("ai", pv.setpoint, **(fields | alarm.fields))


def _uniform(rng: random.Random, signal: Signal) -> float:
    if signal.log_scale:
        value = 10 ** rng.uniform(math.log10(signal.low), math.log10(signal.high))
        return float(f"{value:.3g}")
    return round(rng.uniform(signal.low, signal.high), signal.prec)


def _array(rng: random.Random, signal: Signal) -> tuple[float, ...]:
    """A smooth curve (a Gaussian bump on a slope) of random length and shape."""
    length = rng.randint(*signal.nelm)
    centre, width = rng.uniform(0.3, 0.7) * length, rng.uniform(0.05, 0.2) * length
    span = signal.high - signal.low
    return tuple(
        round(signal.low + span * (0.8 * math.exp(-(((i - centre) / width) ** 2) / 2) + 0.1 * i / length), 6)
        for i in range(length)
    )


def _records(pv: SimPV, scan: str) -> list[str]:
    desc = pv.description[:40]
    display = dict(EGU=pv.egu, PREC=pv.prec)
    if pv.kind in (PAIR, PROTECTED):
        delayer = f"{pv.readback}_DLY"
        setpoint = dict(DESC=desc, VAL=_number(pv.value), PINI="YES", FLNK=delayer, **display)
        if pv.kind == PROTECTED:
            setpoint["ASG"] = PROTECTED_ASG
        # The delay starts only when the readback is off the setpoint by more than the noise:
        # so PINI schedules no timers (50K of them slow the start down), and the decision rests
        # on the records' state, never on a put the busy calcout may have dropped.
        return [
            _record("ao", pv.setpoint, **setpoint),
            _record(
                "calcout",
                delayer,
                DESC="Readback delay",
                INPA=f"{pv.setpoint} NPP",
                INPB=f"{pv.readback} NPP",
                CALC=f"ABS(A-B)>{_number(2 * pv.noise)}",
                OOPT="When Non-zero",
                ODLY=_number(pv.delay),
                OUT=f"{pv.readback}.PROC",
            ),
            _record(
                "calc",
                pv.readback,
                DESC=desc,
                VAL=_number(pv.value),
                INPA=f"{pv.setpoint} NPP",
                CALC=f"A+(RNDM-0.5)*{_number(2 * pv.noise)}",
                PINI="YES",
                **display,
            ),
        ]
    if pv.kind == READONLY:
        return [_record("ai", pv.setpoint, DESC=desc, INP=_number(pv.value), PINI="YES", **display)]
    if pv.kind == CHANGING:
        return [
            _record(
                "calc",
                pv.setpoint,
                DESC=desc,
                SCAN=scan,
                PINI="YES",
                INPA=_number(pv.value),
                INPB=_number(2 * pv.noise),
                CALC="A+(RNDM-0.5)*B",
                **display,
            )
        ]
    if pv.kind == INT:
        return [_record("longout", pv.setpoint, DESC=desc, VAL=pv.value, PINI="YES", EGU=pv.egu)]
    if pv.kind == ENUM:
        states = dict(zip(("ZRST", "ONST", "TWST", "THST", "FRST", "FVST"), pv.labels, strict=False))
        return [_record("mbbo", pv.setpoint, DESC=desc, VAL=pv.value, PINI="YES", **states)]
    if pv.kind == STRING:
        return [_record("stringout", pv.setpoint, DESC=desc, VAL=pv.value, PINI="YES")]
    if pv.kind == STRING_WAVEFORM:
        return [_record("waveform", pv.setpoint, DESC=desc, FTVL="STRING", NELM=len(pv.value))]
    return [_record("waveform", pv.setpoint, DESC=desc, FTVL="DOUBLE", NELM=len(pv.value), **display)]


def _record(record_type: str, name: str, **fields) -> str:
    body = "".join(f'    field({key}, "{_escape(value)}")\n' for key, value in fields.items() if value != "")
    return f'record({record_type}, "{name}") {{\n{body}}}\n'


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


def _number(value: float) -> str:
    return f"{value:.10g}"


def _bool(value: bool) -> str:
    return "true" if value else "false"


# autosave ------------------------------------------------------------------------------------
# `run_sim_ioc --autosave FILE` writes the IOC's settings as EPICS autosave's save_restore does: the
# setpoints a restore writes (the request file an IOC engineer would write), never measurements.

AUTOSAVE_VERSION = "autosave R5.11 (Squirrel simulated IOC)"
# What autosave saves of each kind, and how the IOC reads it: (DBF type name, array).
AUTOSAVE_KINDS = {
    PAIR: ("DOUBLE", False),
    PROTECTED: ("DOUBLE", False),
    INT: ("LONG", False),
    ENUM: ("ENUM", False),
    STRING: ("STRING", False),
    WAVEFORM: ("DOUBLE", True),
    STRING_WAVEFORM: ("STRING", True),
}


def autosave_pvs(pvs: list[SimPV]) -> list[tuple[str, str, bool]]:
    """(setpoint, DBF type name, array) of every PV autosave saves, in registry order."""
    return [(pv.setpoint, *AUTOSAVE_KINDS[pv.kind]) for pv in pvs if pv.kind in AUTOSAVE_KINDS]


def autosave_value_text(value) -> str:
    """A value as autosave writes it: a double with "%.14g", an integer or enum index in decimal, a
    string as it is, an array as ``@array@ { "v1" "v2" }`` with '\\' and '"' escaped."""
    if isinstance(value, (list, tuple)):
        items = (autosave_value_text(item) for item in value)
        return (
            "@array@ { " + " ".join('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items) + " }"
        )
    if isinstance(value, float):
        return format(value, ".14g")
    return str(value)


def autosave_text(values: list[tuple[str, object]], saved_at: float) -> str:
    """The whole .sav file: autosave's header (local time, yymmdd-HHMMSS), ``NAME value`` lines,
    ``#NAME Search Issued`` for a value that could not be read (None), and ``<END>``."""
    stamp = time.strftime("%y%m%d-%H%M%S", time.localtime(saved_at))
    lines = [f"# {AUTOSAVE_VERSION}\tAutomatically generated - DO NOT MODIFY - {stamp}"]
    missing = sum(1 for _, value in values if value is None)
    if missing:
        lines.append(f"! {missing} channel(s) not connected - or not all gets were successful")
    for name, value in values:
        lines.append(f"#{name} Search Issued" if value is None else f"{name} {autosave_value_text(value)}")
    lines.append("<END>")
    return "\n".join(lines) + "\n"
