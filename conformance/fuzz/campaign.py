"""A fuzz campaign: per MQTT version, packet fuzzing then the stateful model, within a time budget.

The budget is shared out among the slices (version and mode); each slice runs in rounds (``rounds.Runner``,
in ``packet_runner`` and ``stateful_runner``). A rule found once is not reported again by later rounds of the
same version (``--ignore`` silences it from the start). If the broker stops answering, the campaign restarts
it through ``restart`` when it was given one (the self-tests' proxies can), otherwise it reports what it has
and stops.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .. import catalogue
from ..codec import Pingreq, Pingresp, Publish
from ..probe import Probe, Timing
from ..transcript import Transcript
from .common import BrokerDown, Finding, FuzzTarget, Limits
from .context import context_for, prefix_for
from .packet_runner import PacketRunner
from .reproducer import write
from .rounds import BrokerGuard, CampaignOptions, SliceStats
from .stateful_runner import StatefulRunner


def sweep_retained(target: FuzzTarget, version: str, prefix: str, limits: Limits) -> int:
    """Clear every retained message below ``prefix`` (left behind by fuzz inputs); returns how many."""
    probe = Probe(target.endpoint, version, Transcript(), client_id=f"fzsweep{version[0]}",
                  timing=Timing(response=limits.liveness_timeout))
    try:
        probe.connect()
        probe.subscribe(f"{prefix}/#", qos=0)
        probe.send(Pingreq())
        before, _ = probe.collect_until(Pingresp)
        topics = {p.topic for p in before if isinstance(p, Publish) and p.retain and p.payload}
        probe.unsubscribe(f"{prefix}/#")
        for topic in sorted(topics):
            probe.send(Publish(topic=topic, payload=b"", retain=True))
        probe.ping()
        probe.disconnect()
        return len(topics)
    except Exception:  # noqa: BLE001 - best effort: a broker that is gone has nothing to clean
        probe.close()
        return 0


class Campaign:
    def __init__(self, target: FuzzTarget, options: CampaignOptions) -> None:
        self.target = target
        self.options = options
        self.findings: list[Finding] = []
        self.stats: list[SliceStats] = []
        self.known: set[tuple[str, str]] = set()
        self.known_culprits: set[tuple[str, str]] = set()
        self.recorded: list[list[str]] = []
        self.aborted: str | None = None
        self.stopped = False  # max_findings reached
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.guard = BrokerGuard(target, options.limits, options.restart)

    def log(self, text: str) -> None:
        if self.options.log:
            self.options.log(text)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def run(self) -> Campaign:
        opts = self.options
        slices = [(v, m) for v in opts.versions for m in opts.modes]
        end = self.started + opts.time_budget
        for version in opts.versions:  # fail fast (exit 2) before any fuzzing if the broker is not there
            context_for(self.target, version, opts.seed, opts.limits)
        swept: set[str] = set()
        for i, (version, mode) in enumerate(slices):
            if self.stopped:
                break
            ctx = context_for(self.target, version, opts.seed, opts.limits)
            if version not in swept:
                sweep_retained(self.target, version, ctx.prefix, opts.limits)
                swept.add(version)
            now = time.monotonic()
            deadline = now + max(0.0, end - now) / (len(slices) - i)
            stats = SliceStats(version, mode)
            self.stats.append(stats)
            began = time.monotonic()
            runner = PacketRunner if mode == "packet" else StatefulRunner
            try:
                runner(self, ctx, deadline, stats).run()
            except BrokerDown as exc:
                self.aborted = str(exc)
                self.log(f"stopped: {exc}")
                stats.seconds = time.monotonic() - began
                break
            stats.seconds = time.monotonic() - began
            self.log(f"{mode} {version}: {stats.examples} examples, {stats.inputs} inputs in {stats.seconds:.1f} s "
                     f"({stats.rate:.0f}/s), {stats.findings} findings")
        if self.aborted is None:
            for version in swept:
                sweep_retained(self.target, version, prefix_for(opts.seed, version), opts.limits)
        return self

    # -- findings -------------------------------------------------------------------------------------
    def is_known(self, version: str, rule: str) -> bool:
        return (version, rule) in self.known

    def add_finding(self, finding: Finding, culprits: set[str] | None = None) -> bool:
        """Record a finding (False if the same one is already there). ``culprits``: signatures of the inputs
        of a minimal liveness finding, so that later batches holding one are not shrunk all over again."""
        if not finding.rule.startswith("liveness"):
            self.known.add((finding.version, finding.rule))
        elif culprits and len(culprits) == 1:
            self.known_culprits.add((finding.version, next(iter(culprits))))
        for existing in self.findings:
            if existing.version == finding.version and existing.rule == finding.rule and \
                    existing.description == finding.description:
                return False
        self.findings.append(finding)
        if self.options.max_findings is not None and len(self.findings) >= self.options.max_findings:
            self.stopped = True
        self.log(f"FINDING {finding.version} {finding.rule}: {finding.description} -> {finding.observed}")
        return True

    @property
    def exit_code(self) -> int:
        return 1 if self.findings else 0

    def results_document(self, report_files: dict[int, str] | None = None) -> dict[str, Any]:
        from ..run.records import CaseRecord, document

        cases: list[dict[str, Any]] = []
        counters: dict[str, int] = {}
        for index, finding in enumerate(self.findings):
            counters[finding.kind] = counters.get(finding.kind, 0) + 1
            n = counters[finding.kind]
            first = finding.statements[0] if finding.statements else None
            statement = catalogue.get(first, finding.version) if first else None
            cases.append(CaseRecord(
                id=f"fuzz::{finding.kind}::{n}", name=f"fuzz {finding.kind} {n}: {finding.rule}",
                module=f"fuzz/{finding.mode}", section=statement.chapter if statement else "",
                mqtt_version=finding.version, statements=finding.statements, level="MUST", verdict="FAIL",
                duration_s=round(finding.found_at, 3), message=finding.message, description=finding.description,
                expectation=finding.expected, transcript=finding.transcript,
                extra={"rule": finding.rule, "reproducer": (report_files or {}).get(index)},
            ).to_dict(run=False))
        for stats in self.stats:
            cases.append(CaseRecord(
                id=f"fuzz::{stats.mode}::{stats.version}", name=f"fuzz {stats.mode} campaign",
                module=f"fuzz/{stats.mode}", section="", mqtt_version=stats.version, statements=[], level="MAY",
                verdict="INFORMATIONAL", duration_s=round(stats.seconds, 3),
                message=(f"{stats.examples} examples, {stats.inputs} inputs in {stats.seconds:.1f} s "
                         f"({stats.rate:.0f} inputs/s), {stats.rounds} rounds, {stats.findings} findings"),
                description="Statistics of the fuzz campaign: what ran, how fast, what it found.",
            ).to_dict(run=False))
        opts = self.options
        options = {"mqtt_version": "all" if len(opts.versions) > 1 else opts.versions[0], "strict": False,
                   "workers": 0, "baseline": None, "fuzz": {
                       "seed": opts.seed, "time_budget": opts.time_budget, "modes": list(opts.modes),
                       "ignore": opts.ignore.to_json(), "aborted": self.aborted,
                       "restarts": self.guard.restarts}}
        target = {"name": f"fuzzed broker {self.target.url}", "urls": {v: self.target.url for v in opts.versions},
                  "embedded": False, "profile": None}
        caps = {v: self.target.caps.get(f"caps-{v}", {}) for v in opts.versions}
        return document(target, self.started_wall, self.elapsed(), options, cases, caps, strict=False)

    def write_reports(self, report_dir: Path) -> dict[str, Any]:
        """Reproducers under ``report_dir/fuzz/``, then results.json and every report."""
        from ..reports import render_all
        from ..run.records import write_results

        files: dict[int, str] = {}
        counters: dict[str, int] = {}
        for index, finding in enumerate(self.findings):
            counters[finding.kind] = counters.get(finding.kind, 0) + 1
            name = f"{finding.kind}-{counters[finding.kind]}"
            path = write(finding, report_dir / "fuzz", name, seed=self.options.seed, target=self.target.url,
                         ignore=self.options.ignore)
            files[index] = str(path.relative_to(report_dir))
        doc = self.results_document(files)
        try:
            render_all(doc, report_dir)
        except Exception as exc:  # noqa: BLE001 - a report bug must not lose results.json
            self.log(f"rendering reports failed: {exc!r}")
        write_results(report_dir / "results.json", doc)
        return doc


__all__ = ["Campaign", "CampaignOptions", "SliceStats", "sweep_retained"]
