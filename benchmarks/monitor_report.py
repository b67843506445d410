"""How bench_monitor.py prints its figures: each protocol's report against the targets and the
replaced system, and the protocols side by side."""

from __future__ import annotations

import statistics

TARGET_STARTUP_S = 3.0
REFERENCE_STARTUP_S = 29.7  # the system Squirrel replaces, measured on the same kind of IOC
TARGET_UPDATES_PER_S = 20_000
TARGET_P95_AGE_S = 0.25


def fmt(seconds: float | None) -> str:
    return "   -  " if seconds is None else f"{seconds:6.2f}"


def side_by_side(args, results: dict) -> None:
    """The targets' figures of every protocol measured, one column each."""
    med = statistics.median
    names = list(results)
    print(f"\nSide by side ({args.pvs} PVs; medians):")
    print("  " + f"{'':<44}" + "".join(f"{name:>14}" for name in names))

    def row(label, values):
        print("  " + f"{label:<44}" + "".join(f"{value:>14}" for value in values))

    def startup_figure(key):
        return [f"{med(r[key] for r in results[n][0]):.2f} s" if results[n][0] else "-" for n in names]

    row("start -> all setpoint addresses in Redis", startup_figure("all setpoint addresses in Redis"))
    row("start -> all addresses in Redis", startup_figure("all addresses in Redis"))
    row("start -> all connected in Redis (poll)", startup_figure("all addresses connected in Redis (poll)"))
    row(
        "  server CPU meanwhile (% of a core)",
        [f"{med(r['_cpu']['servers'] for r in results[n][0]):.0f}%" if results[n][0] else "-" for n in names],
    )
    loads = {n: results[n][3] for n in names}
    for index, case in enumerate(loads[names[0]]):
        offered = case["offered"]
        row(
            f"{offered:,}/s offered: updates/s, p95 age",
            [
                f"{loads[n][index]['updates_per_s']:,.0f} {loads[n][index]['p95_age_s'] * 1000:.0f}ms"
                if index < len(loads[n])
                else "-"
                for n in names
            ],
        )
        row(
            "  CPU: monitor / servers (% of a core)",
            [
                f"{loads[n][index]['cpu']['monitor']:.0f}/{loads[n][index]['cpu']['servers']:.0f}%"
                if index < len(loads[n])
                else "-"
                for n in names
            ],
        )


def report(args, startup, idle, breakdown, loads, profile) -> None:
    med = statistics.median
    if startup:
        print(
            f"\nMonitor startup against the simulated IOC ({args.pvs} PVs), median of {len(startup)}, "
            f"seconds from process start:"
        )
        for key in startup[0]:
            if key.startswith("_"):
                continue
            values = [r[key] for r in startup if r[key] is not None]
            print(
                f"  {key:<44} {fmt(med(values) if values else None)}   (runs: "
                + ", ".join(f"{v:.2f}" for v in values)
                + ")"
            )
        cpu = {k: med(r["_cpu"][k] for r in startup) for k in startup[0]["_cpu"]}
        print(
            f"  meanwhile (% of one core): servers {cpu['servers']:.0f}%, Redis {cpu['redis']:.0f}%, "
            f"everything else but the monitor {cpu['other']:.0f}% (incl. the monitor itself and this script)"
        )
        for key in (
            "all setpoint addresses in Redis",
            "all addresses in Redis",
            "all addresses connected in Redis (poll)",
        ):
            value = med(r[key] for r in startup)
            print(
                f"  {key}: {value:.2f} s = {value / TARGET_STARTUP_S:.0%} of the {TARGET_STARTUP_S:.0f} s target "
                f"({'met' if value <= TARGET_STARTUP_S else 'MISSED'}), {REFERENCE_STARTUP_S / value:.1f}x faster "
                f"than the replaced system's {REFERENCE_STARTUP_S} s"
            )
    if breakdown:
        print(f"\nIn-process breakdown (Monitor stepped in one process, {breakdown['addresses']} addresses), seconds:")
        for key, value in breakdown["marks"].items():
            print(f"  {key:<44} {value:6.2f}")
        for key, value in breakdown["events"].items():
            print(f"  {key + ' (from lease)':<44} {value:6.2f}")
    if idle:
        cpu = idle["cpu"]
        print(
            f"\nIdle with {idle['connected']} addresses connected ({idle['updates_per_s']:.0f} updates/s from the "
            f"changing PVs), {args.window:.0f} s: monitor CPU {cpu['monitor']:.1f}% of a core, RSS "
            f"{idle['rss_mb']:.0f} MB; servers CPU {cpu['servers']:.1f}%, Redis CPU {cpu['redis']:.1f}%, "
            "everything else "
            f"{cpu['other']:.0f}%"
        )
    if loads:
        print(
            f"\nSustained load, {args.pvs} addresses subscribed, medians of the heartbeats over {args.duration:.0f} s:"
        )
        print(
            "  offered/s  updates/s  writes/s  p95 age   max p95  monitor CPU  RSS MB  srv CPU  Redis CPU  "
            "other CPU  target"
        )
        for c in loads:
            ok = c["updates_per_s"] >= 0.97 * c["offered"] and c["p95_age_s"] <= TARGET_P95_AGE_S
            print(
                f"  {c['offered']:>9,} {c['updates_per_s']:>10,.0f} {c['writes_per_s']:>9,.0f} "
                f"{c['p95_age_s'] * 1000:>6.0f} ms {c['p95_age_max_s'] * 1000:>6.0f} ms {c['cpu']['monitor']:>10.0f}% "
                f"{c['rss_mb']:>7.0f} {c['cpu']['servers']:>7.0f}% {c['cpu']['redis']:>9.0f}% "
                f"{c['cpu']['other']:>9.0f}%  "
                f"{'kept up' if ok else 'NOT kept up'}"
            )
        good = [
            c["updates_per_s"]
            for c in loads
            if c["updates_per_s"] >= 0.97 * c["offered"] and c["p95_age_s"] <= TARGET_P95_AGE_S
        ]
        best = max(good, default=0)
        print(
            f"  highest load kept up with p95 age <= {TARGET_P95_AGE_S * 1000:.0f} ms: {best:,.0f} updates/s = "
            f"{best / TARGET_UPDATES_PER_S:.2f}x the {TARGET_UPDATES_PER_S:,}/s target "
            f"({'met' if best >= TARGET_UPDATES_PER_S else 'MISSED'})"
        )
    for c in loads:
        if c.get("py_spy"):
            print(f"\nWhere the monitor's time goes at {c['offered']:,} updates/s offered:")
            print("\n".join(c["py_spy"]))
    if breakdown and breakdown.get("profile_startup"):
        print("\ncProfile of the in-process startup (to all values in Redis):")
        print(breakdown["profile_startup"])
    if profile:
        beats = profile.get("heartbeats") or []
        if beats:
            print(
                f"\ncProfile run (in-process, profiler overhead included): "
                f"{med(b['updates_per_s'] for b in beats):,.0f} updates/s, "
                f"p95 age {med(b['p95_age_s'] for b in beats) * 1000:.0f} ms"
            )
        print(profile.get("profile_tottime", ""))
        print(profile.get("profile_cumulative", ""))
