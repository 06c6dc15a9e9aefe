"""What `make bench` reports: wrk figures, the targets of issue 8 item 5, the machine, Markdown."""

import os
import platform
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_P99_OVER_P50 = 5
MAX_WORKER_RSS_MIB = 120


@dataclass
class Stats:
    """One wrk run, as report.lua prints it (latencies in microseconds)."""

    requests: int
    duration_us: int
    p50_us: int
    p99_us: int
    non2xx: int
    connect: int
    read: int
    write: int
    timeout: int

    @property
    def req_s(self):
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def socket_errors(self):
        return self.connect + self.read + self.write + self.timeout


@dataclass
class Result:
    """A row: its run, the floor run just before it, and list page 0's run for the deep pages."""

    row: object
    stats: Stats
    floor: Stats
    page0: Stats | None

    @property
    def ratio(self):
        return self.stats.req_s / self.floor.req_s if self.floor.req_s else 0.0

    @property
    def clean(self):
        """Measured without a single error response or socket error."""
        return self.stats.requests > 0 and not self.stats.non2xx and not self.stats.socket_errors

    def checks(self):
        """[(target, figure, met)] for this row."""
        checks = []
        if self.row.min_ratio is not None:
            checks.append(
                (
                    f"≥ {self.row.min_ratio} of floor",
                    f"{self.ratio:.3f}",
                    self.ratio >= self.row.min_ratio,
                )
            )
        if self.row.max_p50_vs_page0 is not None and self.page0 is not None:
            times = self.stats.p50_us / self.page0.p50_us if self.page0.p50_us else float("inf")
            checks.append(
                (
                    f"p50 ≤ {self.row.max_p50_vs_page0}x page 0's",
                    f"{times:.2f}x",
                    times <= self.row.max_p50_vs_page0,
                )
            )
        times = self.stats.p99_us / self.stats.p50_us if self.stats.p50_us else float("inf")
        checks.append(
            (f"p99 ≤ {MAX_P99_OVER_P50}x p50", f"{times:.1f}x", times <= MAX_P99_OVER_P50)
        )
        return checks


def worker_rss(master_pid):
    """{pid: VmRSS in MiB} of the gunicorn master's children (its workers)."""
    rss = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid != master_pid:
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            rss[int(stat.parent.name)] = int(match[1]) / 1024
    return rss


def _output(cmd):
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT)
    except OSError:
        return ""
    return (done.stdout or done.stderr).rstrip()


def machine(venv_bin):
    """The machine, the software and the code the run measures."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    knobs = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("BENCH_"))
    command = "make bench" if "MAKELEVEL" in os.environ else ".venv/bin/python deploy/bench/run.py"
    changed = _output(["git", "--no-optional-locks", "status", "--porcelain"]).splitlines()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": f"{knobs} {command}".strip(),
        "commit": _output(["git", "rev-parse", "--short", "HEAD"]).strip(),
        "changed": [line[3:] for line in changed],
        "nproc": _output(["nproc"]).strip(),
        "cpu": cpu,
        "free": _output(["free", "-h"]),
        "python": platform.python_version(),
        "gunicorn": re.sub(r"[^0-9.]", "", _output([venv_bin / "gunicorn", "--version"])),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


def _ms(us):
    ms = us / 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:,.0f}"


def _rate(value):
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def markdown(results, rss, info):
    """The results file: the table, the workers' memory, the targets met, the run and machine."""
    met = missed = 0
    lines = [
        "| endpoint | req/s | floor req/s | ratio | p50 ms | p99 ms | non-2xx | socket errors | targets |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        s = result.stats
        targets = []
        for target, figure, ok in result.checks():
            met, missed = met + ok, missed + (not ok)
            targets.append(f"{target}: {figure} {'met' if ok else '**missed**'}")
        lines.append(
            f"| {result.row.label} | {_rate(s.req_s)} | {_rate(result.floor.req_s)} "
            f"| {result.ratio:.3f} | {_ms(s.p50_us)} | {_ms(s.p99_us)} | {s.non2xx} "
            f"| {s.socket_errors} | {'; '.join(targets)} |"
        )
    lines += ["", "| gunicorn worker | VmRSS after the run | target |", "|---|---:|---|"]
    for pid, mib in sorted(rss.items()):
        ok = mib <= MAX_WORKER_RSS_MIB
        met, missed = met + ok, missed + (not ok)
        lines.append(
            f"| pid {pid} | {mib:.1f} MiB | ≤ {MAX_WORKER_RSS_MIB} MiB: {'met' if ok else '**missed**'} |"
        )
    dirty = [r.row.label for r in results if not r.clean]
    lines += [
        "",
        f"Targets: {met} met, {missed} missed. "
        + (
            f"Rows with errors (not valid): {', '.join(dirty)}."
            if dirty
            else "Every row: 0 non-2xx, 0 socket errors."
        ),
    ]
    seeded = info["seeded"]
    changed = ", ".join(f"`{path}`" for path in info["changed"]) or "none"
    lines += [
        "",
        "Floor: `GET /healthz` through the same stack, measured right before each row (through nginx",
        "for the nginx row). Ratio: the row's req/s over that floor's. The deep-page rows compare",
        "their p50 with list page 0's.",
        "",
        "## Run",
        "",
        f"- date: {info['date']}; command: `{info['command']}`; took {info['elapsed']:.0f} s",
        f"- code: HEAD `{info['commit']}`, uncommitted changes in the work tree: {changed}",
        f"- wrk: {info['connections']} connections, {info['threads']} threads, `--latency`, "
        f"{info['seconds']} s per run after a {info['warmup']} s warm-up of the row "
        f"({info['wrk'].split(' [')[0]})",
        f"- gunicorn {info['gunicorn']} with `deploy/gunicorn.conf.py`, {info['workers']} "
        "workers, DEBUG off",
        f"- nginx {info['nginx'].strip().removeprefix('nginx version: nginx/')} for the nginx "
        f"row: {info['proxy']}, 1 worker process",
        f"- PostgreSQL {seeded['server_version']} (`deploy/pg-temp.sh`: fsync off), "
        f"{seeded['count']:,} relay servers seeded in {seeded['seconds']} s (SQL "
        "`generate_series`, then `ANALYZE`)",
        f"- Python {info['python']}",
        f"- machine: {info['nproc']} CPUs, {info['cpu']}; load average (1, 5, 15 min) before "
        f"the run: {' '.join(info['loadavg'])} (the bench itself keeps every CPU busy; a load "
        "before it means other work was running too)",
        "",
        "```",
        "$ free -h",
        info["free"],
        "```",
    ]
    return "# `make bench`: last run\n\n" + "\n".join(lines) + "\n"
