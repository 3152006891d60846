"""Fuzzing a broker: generated packets judged against the spec, a stateful model of sessions and
deliveries, liveness checks, shrinking, reproducers. See docs/fuzzing.md.

Modules: ``strategies`` (the packet grammar and its oracles), ``packet_fuzz`` (plans, the concurrent engine,
the judges), ``model`` (the reference broker), ``stateful`` (the state machine and its driver),
``campaign`` (time budget, rounds, findings, reports), ``reproducer`` (files and replay), ``cli``.
"""
