"""Fuzzing a broker: generated packets judged against the spec, a stateful model of sessions and
deliveries, liveness checks, shrinking, reproducers. See docs/fuzzing.md.

Modules, bottom up: ``common`` (rules, findings, the target), ``strategies`` (the packet grammar and its
oracles), ``context`` (seeds, names, the broker's capabilities), ``packet_fuzz`` (plans, the concurrent
engine, the judges), ``model`` (the reference broker), ``stateful`` (the state machine and its driver),
``rounds`` (options, the broker guard, the rounds every runner shares), ``packet_runner`` and
``stateful_runner`` (the two kinds of rounds), ``reproducer`` (files and replay), ``campaign`` (time budget,
findings, reports), ``cli``.
"""
