"""Reproducer files: one JSON document per finding, under ``<report dir>/fuzz/``, and their replay.

```json
{
  "format": "mqtt-conformance-fuzz", "format_version": 1,
  "mqtt_version": "5.0", "mode": "packet",            // packet: steps are connections (client + hex bytes)
  "kind": "reaction", "rule": "malformed/flags/PINGREQ",  // stateful: steps are structured actions
  "statements": ["MQTT-2.1.3-1", "MQTT-4.13.1-1"],
  "expected": "...", "observed": "...",
  "steps": [{"client": "f1", "send": "1000...", "half_close": false, "oracle": {...}, "inputs": ["..."]}],
  "ignore": ["3.1.1:model/overlap-qos"],               // the campaign's --ignore patterns
  "seed": 7, "target": "mqtt://127.0.0.1:1883"
}
```

``replay`` runs the steps again (packet steps through the same engine and judges, stateful actions
through the same reference model) and says whether the finding's rule fails again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..codec.version import VERSIONS
from ..errors import ConfigError
from .common import Finding, FuzzTarget, IgnoreList, Limits, Problem, rule_family
from .context import context_for
from .packet_fuzz import LivenessChecker, Plan, run_batch
from .stateful import replay_actions

FORMAT = "mqtt-conformance-fuzz"
FORMAT_VERSION = 1


def to_document(finding: Finding, *, seed: int | None, target: str, ignore: IgnoreList,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "mqtt_version": finding.version, "mode": finding.mode, "kind": finding.kind, "rule": finding.rule,
        "statements": finding.statements, "expected": finding.expected, "observed": finding.observed,
        "description": finding.description, "note": finding.note, "shrunk": finding.shrunk,
        "steps": finding.steps, "ignore": ignore.to_json(), "seed": seed, "target": target,
        "found_after_s": round(finding.found_at, 3), **(extra or {}),
    }


def write(finding: Finding, folder: Path, name: str, **kwargs: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(to_document(finding, **kwargs), indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def load(path: str | Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist") from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f"{path} is not an mqtt-conformance fuzz reproducer")
    if doc.get("mqtt_version") not in VERSIONS or doc.get("mode") not in ("packet", "stateful"):
        raise ConfigError(f"{path}: unknown mqtt_version or mode")
    if not isinstance(doc.get("steps"), list) or not doc["steps"]:
        raise ConfigError(f"{path} has no steps")
    return doc


@dataclass
class ReplayResult:
    reproduced: bool
    problems: list[Problem] = field(default_factory=list)
    transcript: list[dict[str, Any]] = field(default_factory=list)

    def describe(self, rule: str) -> str:
        if self.reproduced:
            first = next(p for p in self.problems if _same_rule(p.rule, rule))
            return f"reproduced: {first.rule}: expected {first.expected}; observed {first.observed}"
        others = "; ".join(f"{p.rule}: {p.observed}" for p in self.problems)
        return "not reproduced" + (f" (other observations: {others})" if others else "")


def replay(doc: dict[str, Any], target: FuzzTarget, limits: Limits, extra_ignore: list[str] | None = None
           ) -> ReplayResult:
    """Run a reproducer against ``target``; ``reproduced`` is True when the finding's rule fails again."""
    ignore = IgnoreList([*doc.get("ignore", []), *(extra_ignore or [])])
    rule = doc["rule"]
    if doc["mode"] == "packet":
        problems, transcript = _replay_packets(doc, target, limits, ignore)
    else:
        problems, transcript = replay_actions(doc, target, limits, ignore)
    return ReplayResult(any(_same_rule(p.rule, rule) for p in problems), problems, transcript)


def _same_rule(found: str, rule: str) -> bool:
    """Whether a problem met on replay is the finding's (its rule family; any liveness rule for liveness)."""
    return rule_family(found) == rule_family(rule) or (rule.startswith("liveness") and found.startswith("liveness"))


def _replay_packets(doc: dict[str, Any], target: FuzzTarget, limits: Limits, ignore: IgnoreList
                    ) -> tuple[list[Problem], list[dict[str, Any]]]:
    version = doc["mqtt_version"]
    ctx = context_for(target, version, doc.get("seed"), limits)
    plans = [Plan.from_step(step) for step in doc["steps"]]
    liveness = LivenessChecker(target, ctx, limits, "fzreplay")
    result = run_batch(plans, target, ctx, limits, liveness, ignore)
    return result.problems, result.transcript()


__all__ = ["FORMAT", "ReplayResult", "load", "replay", "to_document", "write"]
