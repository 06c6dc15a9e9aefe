"""Each scenario's figures and expectations, and the table `make reliability` prints."""

from dataclasses import dataclass, field


@dataclass
class Check:
    expectation: str
    figure: str
    met: bool


@dataclass
class Result:
    scenario: str
    requests: int = 0
    server_errors: int = 0
    faults: str = ""
    recovery: str = "-"
    lost: int = 0
    checks: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # figures worth reading, failing or not
    evidence: list = field(default_factory=list)  # requests and log lines behind a failure

    def check(self, expectation, figure, met):
        self.checks.append(Check(expectation, str(figure), bool(met)))
        return met

    @property
    def passed(self):
        return bool(self.checks) and all(c.met for c in self.checks)


def table(results, elapsed, machine):
    """The summary as Markdown: one row per scenario, then each scenario's expectations."""
    lines = [
        f"## make reliability: {'PASS' if all(r.passed for r in results) else 'FAIL'}",
        "",
        f"{machine}; {elapsed:.0f} s in all.",
        "",
        "| scenario | requests | 5xx | faults injected | recovery s | records lost | result |",
        "|---|---:|---:|---|---|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.scenario} | {r.requests} | {r.server_errors} | {r.faults} | {r.recovery} "
            f"| {r.lost} | {'PASS' if r.passed else 'FAIL'} |"
        )
    lines += [
        "",
        "requests: HTTP requests sent (boto3's retries included); 5xx: answers 500-599 among them "
        "(in scenario 1, the 503s promised while the database is down); recovery s: scenario 1, "
        "database up to the first 200 (the slowest of GreenArrow, Mail Manager, /readyz); "
        "scenario 2, kill to gunicorn's replacement worker (the others kept answering); records "
        "lost: creates answered 200 that are not in the database (nor deleted since).",
    ]
    for r in results:
        lines += ["", f"### {r.scenario}", ""]
        lines += [f"- [{'x' if c.met else ' '}] {c.expectation}: {c.figure}" for c in r.checks]
        lines += [f"- {note}" for note in r.notes]
        if r.evidence:
            lines += ["", "Evidence:", "", "```"]
            lines += [line[:1500] for line in r.evidence[:20]]
            if len(r.evidence) > 20:
                lines.append(f"... and {len(r.evidence) - 20} more")
            lines.append("```")
    return "\n".join(lines)
