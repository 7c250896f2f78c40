"""Figures of `scripts/bench peers`: each system's TTFT percentiles, failures and bulk tokens/s, and the five
keys it adds to target/bench/summary.json, written in the format of benches/support/summary.rs (value, and
per key its target, whether it is met, a note, the commit and the time), with summary.md rewritten beside it."""

import datetime
import json
import os
import subprocess
from pathlib import Path

# A peer that left more than this share of its questions unanswered is not a candidate for "best peer": a
# proxy that rejects most questions answers the rest quickly, and that is not a low p99.
MAX_FAILED_SHARE = 0.1


def percentile(samples, p):
    """The `p` quantile, nearest rank, as benches/support/stats.rs (with 36 samples p99 is the slowest)."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * p))]


def system_figures(system, rounds):
    ttft = [t for r in rounds for t in r["ttft_ms"]]
    failures = [f for r in rounds for f in r["failures"]]
    tokens = sum(r["bulk_tokens"] for r in rounds)
    seconds = sum(r["window_s"] for r in rounds)
    switches = [r["switches"] for r in rounds if r["switches"] is not None]
    return {
        "how": system.how,
        "versions": system.versions,
        "asked": len(ttft) + len(failures),
        "answered": len(ttft),
        "failures": failures,
        "bulk_failures": [f for r in rounds for f in r["bulk_failures"]],
        "ttft_ms_p50": percentile(ttft, 0.5),
        "ttft_ms_p99": percentile(ttft, 0.99),
        "bulk_tps": tokens / seconds if seconds else None,
        "bulk_tps_per_round": [r["bulk_tokens"] / r["window_s"] for r in rounds],
        "launches_per_round": [r["launches"] for r in rounds],
        "cancels_per_round": [r["cancels"] for r in rounds],
        "switches": sum(switches) if switches else None,
        "load_per_round": [round(r["load"], 2) for r in rounds],
    }


def best_peer(systems):
    """The peer with the lowest interactive p99 among those that answered nearly every question."""
    candidates = [
        (fig["ttft_ms_p99"], name) for name, fig in systems.items()
        if name != "llmkernel" and fig["ttft_ms_p99"] is not None
        and len(fig["failures"]) <= MAX_FAILED_SHARE * fig["asked"]
    ]
    return min(candidates)[1] if candidates else None


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(v, unit=""):
    return "-" if v is None else f"{v:.0f}{unit}"


def keys(report):
    """The five figures of the run: (key, value, target, note)."""
    systems = report["systems"]
    ours, fifo = systems.get("llmkernel"), systems.get("direct")
    best = best_peer(systems)
    peer = systems.get(best) if best else None
    idle = report["idle_ttft_ms_p50"]
    line = "; ".join(
        f"{name} p50/p99 {fmt(f['ttft_ms_p50'])}/{fmt(f['ttft_ms_p99'])} ms, bulk {fmt(f['bulk_tps'])} tok/s, "
        f"{len(f['failures'])} of {f['asked']} failed" for name, f in systems.items())
    slots = report.get("slots", 4)
    # A run on a server with other than 4 slots keeps its figures apart from the workload's own.
    suffix = "" if slots == 4 else f"_np{slots}"
    setup = (f"llama-server -np {slots}, SmolLM2-135M, 4 bulk streams of 384 tokens, 12 questions one a second, "
             f"{report['rounds']} rounds a system, alternating; best peer (lowest p99, <= 10% failed): {best}; "
             f"idle TTFT p50 {fmt(idle)} ms; {line}")
    switches = ours and ours["switches"]
    figures = [
        ("interactive_p99_vs_best_peer",
         ratio(peer and peer["ttft_ms_p99"], ours and ours["ttft_ms_p99"]), ">= 2", setup),
        ("bulk_tps_vs_best_peer", ratio(ours and ours["bulk_tps"], peer and peer["bulk_tps"]), ">= 1.2", setup),
        ("interactive_p99_over_idle", ratio(ours and ours["ttft_ms_p99"], idle), "<= 3",
         f"llmkernel p99 {fmt(ours and ours['ttft_ms_p99'])} ms over the idle server's TTFT p50 {fmt(idle)} ms "
         f"(one question at a time, straight to llama-server, same run)"),
        ("bulk_tps_vs_fifo", ratio(ours and ours["bulk_tps"], fifo and fifo["bulk_tps"]), ">= 0.9",
         f"bulk tokens/s while the questions arrive, by POST /tokenize: llmkernel {fmt(ours and ours['bulk_tps'])}, "
         f"llama-server directly {fmt(fifo and fifo['bulk_tps'])}"),
        ("switches_per_interactive",
         ratio(switches, ours and ours["asked"]) if switches is not None else None, "<= 1",
         f"llmkernel context switches (`sched`) from the first question to the end of the window: {switches} for "
         f"{ours and ours['asked']} questions"),
    ]
    return [(key + suffix, value, target, note) for key, value, target, note in figures]


def met(value, target):
    if value is None:
        return None
    op, bound = target.split(" ")
    return value <= float(bound) if op == "<=" else value >= float(bound)


def rounded(v):
    return round(v, 1) if abs(v) >= 100 else round(v, 3)


def git(*args):
    out = subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent)
    return out.stdout.strip() if out.returncode == 0 else None


def commit():
    head = git("rev-parse", "HEAD")
    if head is None:
        return "unknown"
    changes = git("status", "--porcelain", "--untracked-files=no")
    return head if changes == "" else head + "-dirty"


def machine():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "kernel": Path("/proc/sys/kernel/osrelease").read_text().strip(),
        "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def record_summary(bench_dir, report):
    path = Path(bench_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        summary = {}
    summary["machine"] = machine()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    at = commit()
    for key, value, target, note in keys(report):
        summary[key] = None if value is None else rounded(value)
        for section, entry in (("targets", target), ("met", met(value, target)), ("notes", note),
                               ("commits", at), ("measured_at", when)):
            summary.setdefault(section, {})[key] = entry
        shown = "-" if value is None else rounded(value)
        print(f"{key:<28} {shown:>10}  (target {target})  {note}")
    path.write_text(json.dumps(summary, indent=2) + "\n")
    (Path(bench_dir) / "summary.md").write_text(table(summary))


# The table's first keys, as in benches/support/summary.rs (others follow, by name).
ORDER = ["rtt_p50_ratio", "rtt_p99_ratio", "ttft_added_us_p50", "ttft_added_us_p99", "stream_time_ratio",
         "throughput_ratio", "sched_pick_us_100k", "sched_pick_growth", "queued_bytes_per_process",
         "interactive_ttft_p99_gain"]


def table(summary):
    """The readable table of summary.md, as benches/support/summary.rs writes it."""
    def section(name, key):
        return (summary.get(name) or {}).get(key)

    out = "| key | value | target | met | how | measured on |\n|---|---:|---|---|---|---|\n"
    keys_ = [k for k, v in summary.items() if not isinstance(v, dict)]
    keys_.sort(key=lambda k: (ORDER.index(k) if k in ORDER else len(ORDER), k))
    for key in keys_:
        value = summary[key]
        shown = "-" if value is None else json.dumps(value)
        met_ = {True: "yes", False: "**no**"}.get(section("met", key), "skipped")
        at = section("commits", key) or ""
        dirty = "-dirty" if at.endswith("-dirty") else ""
        short = at.removesuffix("-dirty")[:12]
        out += (f"| `{key}` | {shown} | {section('targets', key) or ''} | {met_} | {section('notes', key) or ''} "
                f"| {short}{dirty} {section('measured_at', key) or ''} |\n")
    m = summary.get("machine")
    if m:
        out += (f"\nmachine: {m['cpus']} × {m['cpu']}, Linux {m['kernel']}, "
                f"load average at the end {m['load']}\n")
    return out
