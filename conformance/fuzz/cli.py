"""``mqtt-conformance fuzz`` and ``mqtt-conformance replay``.

Exit codes as for ``run``: 0 nothing found (replay: the finding does not reproduce), 1 something found
(replay: it still fails), 2 usage error or unreachable broker.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from ..codec.version import VERSIONS, Version
from ..errors import ConfigError

FUZZ_HELP = "fuzz a broker: malformed and unusual packets, and a stateful model of sessions and deliveries"
REPLAY_HELP = "replay a fuzz reproducer (exit 1 if it still fails, 0 if not)"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    fuzz = sub.add_parser("fuzz", help=FUZZ_HELP, description=FUZZ_HELP)
    fuzz.add_argument("--broker", required=True, metavar="URL", help="mqtt://host:port (plain TCP)")
    fuzz.add_argument("--mqtt-version", default="all", choices=[*VERSIONS, "all"])
    fuzz.add_argument("--seed", type=int, metavar="N", help="the same seed gives the same inputs (default: random, "
                                                             "printed)")
    fuzz.add_argument("--time-budget", type=float, default=60.0, metavar="SECONDS",
                      help="generation time, shared by versions and modes (default 60)")
    fuzz.add_argument("--report-dir", default="reports", metavar="DIR",
                      help="results.json, reports, and reproducers under DIR/fuzz/ (default reports)")
    fuzz.add_argument("--allow-remote", action="store_true",
                      help="allow a target that is not a loopback address (fuzzing can take a broker down)")
    fuzz.add_argument("--mode", default="all", choices=["packet", "stateful", "all"])
    fuzz.add_argument("--ignore", action="append", default=[], metavar="[VERSION:]RULE",
                      help="do not judge this oracle rule (fnmatch pattern, e.g. malformed/flags/PINGREQ or "
                           "3.1.1:model/overlap-qos); liveness is always checked")
    fuzz.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS",
                      help="bound on every answer waited for (default 3)")
    fuzz.add_argument("--shrink-time", type=float, default=30.0, metavar="SECONDS",
                      help="time to shrink each finding, beyond the budget (default 30)")
    fuzz.add_argument("--max-findings", type=int, metavar="N", help="stop after N findings")
    fuzz.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

    replay = sub.add_parser("replay", help=REPLAY_HELP, description=REPLAY_HELP)
    replay.add_argument("file", metavar="FILE", help="a reproducer written by fuzz (DIR/fuzz/*.json)")
    replay.add_argument("--broker", required=True, metavar="URL")
    replay.add_argument("--allow-remote", action="store_true")
    replay.add_argument("--ignore", action="append", default=[], metavar="[VERSION:]RULE")
    replay.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS")


def _limits(timeout: float):  # noqa: ANN202
    from .common import Limits

    if timeout <= 0:
        raise ConfigError("--timeout must be positive")
    return Limits(timeout=timeout, liveness_timeout=max(timeout, 2.0))


def cmd_fuzz(args: argparse.Namespace) -> int:
    from .campaign import Campaign, CampaignOptions
    from .common import IgnoreList, resolve_target

    target = resolve_target(args.broker, args.allow_remote)  # refuses remote targets before any packet
    if args.time_budget <= 0:
        raise ConfigError("--time-budget must be positive")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    versions = VERSIONS if args.mqtt_version == "all" else (Version.parse(args.mqtt_version),)
    modes = ("packet", "stateful") if args.mode == "all" else (args.mode,)

    def log(text: str) -> None:
        if not args.quiet:
            print(f"fuzz: {text}", file=sys.stderr)

    options = CampaignOptions(versions=versions, seed=seed, time_budget=args.time_budget, modes=modes,
                              limits=_limits(args.timeout), ignore=IgnoreList(args.ignore),
                              shrink_time=max(0.0, args.shrink_time), max_findings=args.max_findings, log=log)
    print(f"mqtt-conformance fuzz: {target.url}, MQTT {' and '.join(versions)}, {' and '.join(modes)}, seed {seed}, "
          f"budget {args.time_budget:g} s", file=sys.stderr)
    campaign = Campaign(target, options)
    campaign.run()
    report_dir = Path(args.report_dir)
    doc = campaign.write_reports(report_dir)
    for case in doc["cases"]:
        if case["verdict"] == "FAIL":
            print(f"FINDING [{case['mqtt_version']}] {case['id']}: {case['message']}")
            print(f"  reproducer: {report_dir / case['reproducer']}" if case.get("reproducer") else "")
    for stats in campaign.stats:
        print(f"{stats.mode} {stats.version}: {stats.examples} examples, {stats.inputs} inputs, "
              f"{stats.seconds:.1f} s, {stats.findings} findings", file=sys.stderr)
    if campaign.aborted:
        print(f"mqtt-conformance fuzz: stopped early: {campaign.aborted}", file=sys.stderr)
    print(f"{len(campaign.findings)} finding(s); results in {report_dir / 'results.json'} (seed {seed})")
    if campaign.aborted and not campaign.findings:
        return 2
    return campaign.exit_code


def cmd_replay(args: argparse.Namespace) -> int:
    from .common import resolve_target
    from .context import context_for
    from .reproducer import load, replay

    doc = load(args.file)
    target = resolve_target(args.broker, args.allow_remote)
    limits = _limits(args.timeout)
    context_for(target, doc["mqtt_version"], doc.get("seed"), limits)  # unreachable: exit 2
    result = replay(doc, target, limits, args.ignore)
    print(f"{args.file} [{doc['mqtt_version']} {doc['rule']}]: {result.describe(doc['rule'])}")
    return 1 if result.reproduced else 0


COMMANDS = {"fuzz": cmd_fuzz, "replay": cmd_replay}

__all__ = ["COMMANDS", "add_parsers", "cmd_fuzz", "cmd_replay"]
