"""Runs the fault-injection suite: what mlcheck catches, how early, and the false alarms.

Each program of `benchmarks/faults/` trains once with `MLCheckCallback()` (mode "mlcheck") and
once with the framework's own safety nets instead (mode "safety_net"), with the same seed. Programs
run in worker processes, one per (framework, mode), each program re-seeded; a crashed worker is
restarted on the programs it had left.

    python benchmarks/run_faults.py                      # the whole suite, both modes (~10-15 min)
    python benchmarks/run_faults.py --quick              # one framework per fault, 3 clean each
    python benchmarks/run_faults.py --framework keras --only lr_x100,clean_adam -v
    python benchmarks/run_faults.py --modes mlcheck --json-out /tmp/r.json
    python benchmarks/run_faults.py --layers --modes mlcheck --sanity none   # per-layer faults
    python benchmarks/run_faults.py --layers --modes mlcheck --sanity none --epochs 2   # short runs

Prints the tables and writes the results as JSON (default benchmarks/results/faults.json) and
the tables as Markdown (same name, .md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from faults.catalog import Program, all_programs, select  # noqa: E402
from faults.execute import ALARM, median  # noqa: E402

MODES = ("mlcheck", "safety_net")
TARGET_RECALL = 0.9
TARGET_LATENCY = 0.25


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help="comma-separated program names or name fragments")
    p.add_argument("--framework", choices=("lightning", "keras"))
    p.add_argument("--quick", action="store_true", help="a subset: one framework per fault")
    p.add_argument("--smoke", action="store_true", help="the CI smoke subset")
    p.add_argument(
        "--layers",
        action="store_true",
        help="the per-layer programs instead (layer faults in both frameworks, clean runs; layer checks on)",
    )
    p.add_argument("--modes", default=",".join(MODES), help="mlcheck,safety_net,plain")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--sanity",
        choices=("all", "preflight", "none"),
        default="all",
        help="run mlcheck.sanity before training in mode mlcheck: on all programs "
        "(default), on pre-flight faults and clean runs only, or none",
    )
    p.add_argument(
        "--epochs",
        type=int,
        help="train every program this many epochs instead of its own length (short runs: 2 epochs of "
        "digits are 90 steps; the layer NaN programs turn bad at step 300, so they need 10)",
    )
    p.add_argument("--json-out", default=str(HERE / "results" / "faults.json"))
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per program before its worker is killed")
    p.add_argument("--list", action="store_true", help="list the programs and exit")
    p.add_argument("-v", "--verbose", action="store_true", help="print every finding")
    # internal: a worker runs programs in-process and appends JSON lines to --results
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--names", help=argparse.SUPPRESS)
    p.add_argument("--results", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# -- worker ------------------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> int:
    from faults.execute import quiet, run_program

    quiet()
    by_name = {p.name: p for p in all_programs()}
    for name in args.names.split(","):
        program = by_name[name]
        if args.epochs is not None:
            program = replace(program, config={**program.config, "epochs": args.epochs})
        sanity = {"all": True, "none": False, "preflight": program.preflight or program.clean}[args.sanity]
        with open(args.results, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"started": name}) + "\n")
        result = run_program(program, args.mode, args.seed, sanity=sanity if args.mode == "mlcheck" else False)
        with open(args.results, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(result, default=str) + "\n")
        print(f"  [{args.mode}] {name}: {status(result)} ({result['seconds']:.1f}s)", file=sys.stderr, flush=True)
    return 0


def status(r: dict[str, Any]) -> str:
    if r.get("error"):
        return "ERROR " + r["error"].splitlines()[0][:160]
    if r["mode"] == "mlcheck":
        if r["clean"]:
            return "FALSE ALARM " + ",".join(r["alarms"]) if r["false_alarm"] else "quiet"
        if r["caught"]:
            return f"caught by {r['first_hit']} ({'+'.join(r['caught_by'])}) at {r['latency']:.0%}"
        return "missed" + (f" (other alarms: {','.join(r['alarms'])})" if r["alarms"] else "")
    stopped = r.get("stopped")
    return f"stopped ({stopped['reason']}) at {stopped['step']}/{r['total_steps']}" if stopped else "ran to the end"


# -- parent ------------------------------------------------------------------------------------


def run_mode(chosen: list[Program], mode: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Runs `chosen` in `mode`, one worker per framework, restarting a worker that dies."""
    results: list[dict[str, Any]] = []
    for framework in ("lightning", "keras"):
        left = [p.name for p in chosen if p.framework == framework]
        while left:
            with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as tmp:
                path = tmp.name
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                "--mode",
                mode,
                "--names",
                ",".join(left),
                "--seed",
                str(args.seed),
                "--sanity",
                args.sanity,
                "--results",
                path,
            ]
            if args.epochs is not None:
                cmd += ["--epochs", str(args.epochs)]
            env = dict(
                os.environ,
                PYTHONHASHSEED="0",
                KERAS_BACKEND="torch",
                KERAS_HOME=os.environ.get("KERAS_HOME", tempfile.mkdtemp()),
            )
            try:
                proc = subprocess.run(cmd, env=env, timeout=args.timeout * len(left) + 30)
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
            done, started = [], None
            for line in Path(path).read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                if "started" in record:
                    started = record["started"]
                else:
                    done.append(record)
                    started = None
            os.unlink(path)
            results += done
            finished = {r["program"] for r in done}
            left = [n for n in left if n not in finished]
            if left:
                # the worker died in `started` (or before any program): record it, go on
                dead = started or left[0]
                results.append(
                    {
                        "program": dead,
                        "framework": framework,
                        "mode": mode,
                        "error": f"worker died (exit {rc})",
                        "valid": False,
                        "clean": dead.split("/")[1].startswith("clean_"),
                    }
                )
                left = [n for n in left if n != dead]
    return results


def machine() -> dict[str, Any]:
    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    return {
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in ("torch", "lightning", "keras", "numpy", "scikit-learn", "mlxtend", "mlcheck")},
    }


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        rs = [r for r in results if r.get("mode") == mode]
        if not rs:
            continue
        faults = [r for r in rs if not r.get("clean") and r.get("valid")]
        clean = [r for r in rs if r.get("clean") and r.get("valid")]
        caught = [r for r in faults if r.get("caught")]
        s: dict[str, Any] = {
            "fault_runs": len(faults),
            "caught": len(caught),
            "recall": len(caught) / len(faults) if faults else None,
            "median_latency": median([r["latency"] for r in caught]),
            "clean_runs": len(clean),
            "false_alarms": sum(bool(r.get("false_alarm")) for r in clean),
            "invalid_runs": [r["program"] for r in rs if not r.get("valid")],
            "missed": [r["program"] for r in faults if not r.get("caught")],
        }
        if mode == "mlcheck":
            live = [r for r in faults if r.get("caught_live")]
            s["caught_live"] = len(live)
            s["recall_live"] = len(live) / len(faults) if faults else None
            s["caught_sanity"] = sum(bool(r.get("caught_sanity")) for r in faults)
            s["recall_sanity"] = s["caught_sanity"] / len(faults) if faults else None
            s["median_latency_live"] = median([r["latency_live"] for r in live])
            s["flagged"] = sum(bool(r.get("flagged")) for r in faults)
        if mode == "safety_net":
            s["caught_strict"] = sum(bool(r.get("caught_strict")) for r in faults)
            s["recall_strict"] = s["caught_strict"] / len(faults) if faults else None
            s["clean_stopped_early"] = sum(bool(r.get("stopped_early")) for r in clean)
        else:
            s["false_alarm_runs"] = {r["program"]: r["alarms"] for r in clean if r["false_alarm"]}
            s["caught_by_sanity_only"] = [r["program"] for r in caught if r["caught_by"] == ["sanity"]]
            s["per_fault"] = per_fault(faults)
        out[mode] = s
    return out


def per_fault(faults: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for r in faults:
        row = table.setdefault(r["fault"], {"runs": 0, "caught": 0})
        row["runs"] += 1
        row["caught"] += bool(r.get("caught"))
    for row in table.values():
        row["recall"] = row["caught"] / row["runs"]
    return table


# -- tables ------------------------------------------------------------------------------------


def pct(x: Any) -> str:
    return "-" if x is None or x != x else f"{x:.0%}"


def tables(results: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    by = {(r["program"], r.get("mode")): r for r in results}
    names = list(dict.fromkeys(r["program"] for r in results))
    faults = [n for n in names if not n.split("/")[1].startswith("clean_")]
    clean = [n for n in names if n.split("/")[1].startswith("clean_")]
    lines = _fault_table(faults, by) + _clean_table(clean, by) + _summary_table(summary)
    if any(r.get("layer") for r in results):
        lines += _layer_table(faults, by)
    if any(r.get("sagemaker") is not None for r in results):
        lines += _sagemaker_table(faults, clean, by)
    return "\n".join(lines)


def _sagemaker_table(faults: list[str], clean: list[str], by: dict[tuple[str, Any], dict[str, Any]]) -> list[str]:
    """SageMaker Debugger's built-in layer rules, re-implemented on the same layer statistics
    (`faults/sagemaker_rules.py`), beside mlcheck: per fault, the first matching rule and its
    layer; per clean run, any rule that fired (a false alarm)."""

    def fired(f: dict[str, Any]) -> str:
        return f"{f['rule']} on `{f['layer']}` @{f['step']}"

    lines = [
        "",
        "### SageMaker rules on the same layer statistics",
        "",
        "| program | planted layer | mlcheck (live) | SageMaker rule (first match) | on planted layer "
        "| every rule that fired | at save_interval 500 |",
        "|---|---|---|---|---|---|---|",
    ]
    caught = sage = sage_right = saved = judged = 0
    for n in faults:
        m = by.get((n, "mlcheck"))
        if m is None or m.get("sagemaker") is None:
            continue
        judged += 1
        score, score_saved = m.get("sagemaker_score") or {}, m.get("sagemaker_saved_score") or {}
        caught += bool(m.get("caught_live"))
        sage += bool(score.get("caught"))
        sage_right += bool(score.get("right_layer"))
        saved += bool(score_saved.get("caught"))
        mcol = f"`{m['first_hit_live']}`" if m.get("caught_live") else "missed"
        scol = fired(score["first"]) if score.get("caught") else "missed"
        right = fired(score["on_layer"][0]) if score.get("right_layer") else ("no" if score.get("caught") else "-")
        every = ", ".join(m["sagemaker"]["rules"]) or "-"
        lines.append(
            f"| {n} | `{m.get('layer')}` | {mcol} | {scol} | {right} | {every} | "
            f"{'caught' if score_saved.get('caught') else 'missed'} |"
        )
    alarms_m = alarms_s = alarms_saved = runs = 0
    noisy: list[str] = []
    for n in clean:
        m = by.get((n, "mlcheck"))
        if m is None or m.get("sagemaker") is None:
            continue
        runs += 1
        alarms_m += bool(m.get("false_alarm"))
        rules = m["sagemaker"]["rules"]
        alarms_s += bool(rules)
        alarms_saved += bool(m["sagemaker"]["at_save_interval"]["rules"])
        if rules:
            first = m["sagemaker"]["first"][0]
            noisy.append(f"{n}: {', '.join(rules)} (first {fired(first)})")
    lines += [
        "",
        "| | mlcheck layer checks | SageMaker rules, every sampled step | SageMaker rules, save_interval 500 |",
        "|---|---|---|---|",
        f"| layer faults caught (matching rule / check id) | {caught}/{judged} | {sage}/{judged} "
        f"({sage_right} on the planted layer) | {saved}/{judged} |",
        f"| clean runs with any WARNING/ERROR or rule firing | {alarms_m}/{runs} | {alarms_s}/{runs} "
        f"| {alarms_saved}/{runs} |",
    ]
    if noisy:
        lines += ["", "Clean runs a SageMaker rule fired on:", ""] + [f"- {x}" for x in noisy]
    return lines


def _layer_table(faults: list[str], by: dict[tuple[str, Any], dict[str, Any]]) -> list[str]:
    """Per-layer faults: does the finding name the planted layer (module path / layer name)?"""
    lines = [
        "",
        "### Layer named",
        "",
        "| program | planted layer | first finding | layer it names | right layer |",
        "|---|---|---|---|---|",
    ]
    named = right = nan_named = nan_right = 0
    for n in faults:
        m = by.get((n, "mlcheck"))
        if m is None or not m.get("layer"):
            continue
        hit = f"`{m['first_hit_live']}`" if m.get("caught_live") else "-"
        got = m.get("named_layer")
        ok = "yes" if m.get("named_right") else ("no" if got is not None else "-")
        named += 1
        right += bool(m.get("named_right"))
        if "nonfinite-origin" in m.get("catches", []):
            nan_named += 1
            nan_right += bool(m.get("named_right"))
        lines.append(f"| {n} | `{m['layer']}` | {hit} | {f'`{got}`' if got else '-'} | {ok} |")
    lines += ["", f"Right layer named: {right}/{named} layer faults; NaN origin {nan_right}/{nan_named}."]
    return lines


def _fault_table(faults: list[str], by: dict[tuple[str, Any], dict[str, Any]]) -> list[str]:
    lines = [
        "### Faults",
        "",
        "| program | counts as caught | caught by sanity (before training) | caught live "
        "| live latency | other WARNING/ERROR ids | safety net | latency |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in faults:
        m, s = by.get((n, "mlcheck")), by.get((n, "safety_net"))
        ids = ", ".join(f"`{c}`" for c in (m or s or {}).get("catches", []))
        if m is None:
            pre = live = lat = other = "-"
        elif not m.get("valid"):
            pre, live, lat, other = "error", "error", "-", m.get("error", "")[:60]
        else:
            missed = "info only" if m.get("info_only") else "-"
            pre = (
                f"`{m['first_hit_sanity']}`"
                if m.get("caught_sanity")
                else ("not run" if m.get("sanity") is None else "-")
            )
            live = f"`{m['first_hit_live']}`" if m.get("caught_live") else missed
            lat = pct(m.get("latency_live")) if m.get("caught_live") else "-"
            other = ", ".join(m.get("wrong_ids", [])) or "-"
            if not m["caught"]:
                n = f"**{n}** (missed)"
        if s is None:
            scol = slat = "-"
        elif not s.get("valid"):
            scol, slat = "error", "-"
        else:
            st = s.get("stopped")
            scol = f"stopped ({st['reason']})" if st else "ran to the end"
            slat = pct(s.get("latency")) if st else "-"
        lines.append(f"| {n} | {ids} | {pre} | {live} | {lat} | {other} | {scol} | {slat} |")
    return lines


def _clean_table(clean: list[str], by: dict[tuple[str, Any], dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "### Clean runs",
        "",
        "| program | mlcheck WARNING/ERROR | mlcheck INFO | safety net |",
        "|---|---|---|---|",
    ]
    for n in clean:
        m, s = by.get((n, "mlcheck")), by.get((n, "safety_net"))
        if m is None:
            mcol = info = "-"
        elif not m.get("valid"):
            mcol, info = "error: " + m.get("error", "")[:60], "-"
        else:
            mcol = ("**" + ", ".join(m["alarms"]) + "**") if m["false_alarm"] else "none"
            infos = {
                f["check"]
                for f in m.get("findings", []) + (m.get("sanity") or {}).get("findings", [])
                if f["severity"] not in ALARM
            }
            info = ", ".join(sorted(infos)) or "-"
        if s is None:
            scol = "-"
        elif not s.get("valid"):
            scol = "error"
        else:
            st = s.get("stopped")
            scol = f"stopped ({st['reason']}) at {pct(st['step'] / s['total_steps'])}" if st else "ran to the end"
        lines.append(f"| {n} | {mcol} | {info} | {scol} |")
    return lines


def _summary_table(summary: dict[str, Any]) -> list[str]:
    lines = ["", "### Summary", "", "| | mlcheck | framework safety nets | target |", "|---|---|---|---|"]
    m, s = summary.get("mlcheck", {}), summary.get("safety_net", {})

    def ok(value: Any, good: bool) -> str:
        return f"{value} {'(met)' if good else '(**missed**)'}"

    if m:
        recall = f"{m['caught']}/{m['fault_runs']} = {pct(m['recall'])}"
        alarms = f"{m['false_alarms']}/{m['clean_runs']}"
        net_recall = (
            f"{s.get('caught', '-')}/{s.get('fault_runs', '-')} = "
            f"{pct(s.get('recall'))} any stop; {s.get('caught_strict', '-')} "
            "non-finite/divergence stops"
        )
        net_alarms = (
            f"{s.get('false_alarms', '-')}/{s.get('clean_runs', '-')} "
            f"non-finite/divergence stops; {s.get('clean_stopped_early', '-')} "
            "stopped early (any reason)"
        )
        latency = m["median_latency"]
        lines.append(
            f"| recall over {m['fault_runs']} fault runs | "
            f"{ok(recall, (m['recall'] or 0) >= TARGET_RECALL)} | {net_recall} | >= 90% |"
        )
        lines.append(
            f"| clean runs with a WARNING/ERROR (false alarms) | "
            f"{ok(alarms, m['false_alarms'] == 0)} | {net_alarms} | 0 |"
        )
        lines.append(
            f"| median detection latency (share of the run) | "
            f"{ok(pct(latency), latency == latency and latency < TARGET_LATENCY)} | "
            f"{pct(s.get('median_latency'))} | < 25% |"
        )
        if "recall_live" in m:
            lines.append(
                f"| recall of the live callback alone (no sanity) | {m['caught_live']}/"
                f"{m['fault_runs']} = {pct(m['recall_live'])} | | |"
            )
            lines.append(
                f"| recall of `mlcheck.sanity` alone (before training) | "
                f"{m['caught_sanity']}/{m['fault_runs']} = {pct(m['recall_sanity'])} | | |"
            )
            lines.append(f"| median latency of the live callback alone | {pct(m['median_latency_live'])} | | |")
            lines.append(
                f"| fault runs with any WARNING/ERROR, right id or not | {m['flagged']}/{m['fault_runs']} | | |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    chosen = select(args.only, args.framework, args.quick, args.smoke, layers=args.layers)
    if args.list or not chosen:
        for p in chosen:
            print(f"{p.name:40s} catches: {', '.join(p.catches) or '(clean)'}")
        return 0 if chosen else 2
    modes = [m for m in args.modes.split(",") if m]
    start = time.perf_counter()
    info = machine()
    print(f"{len(chosen)} programs x {len(modes)} modes", file=sys.stderr)
    results: list[dict[str, Any]] = []
    for mode in modes:
        results += run_mode(chosen, mode, args)
    summary = summarize(results)
    text = tables(results, summary)
    print(text)
    if args.verbose:
        for r in results:
            for f in (r.get("sanity") or {}).get("findings", []) + r.get("findings", []):
                print(
                    f"{r['program']} [{r['mode']}] {f['severity']} {f['check']} "
                    f"@{f.get('observed_step')}: {f['message'][:140]}"
                )
            if r.get("error"):
                print(f"{r['program']} [{r['mode']}] ERROR {r['error']}\n{r.get('traceback', '')}")
    out = {
        "machine": info,
        "args": {k: v for k, v in vars(args).items() if k not in ("worker", "mode", "names", "results")},
        "seconds": round(time.perf_counter() - start, 1),
        "summary": summary,
        "results": results,
    }
    path = Path(args.json_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str), encoding="utf-8")
    path.with_suffix(".md").write_text(text + "\n", encoding="utf-8")
    print(f"\nwrote {path} and {path.with_suffix('.md')} ({out['seconds']:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
