"""Self-validation by mutation: fault-injecting proxies ("mutant brokers") in front of a real mosquitto.

Each mutant breaks exactly one normative statement; ``run_mutants`` runs the relevant conformance cases
through every mutant and checks that at least one case which passes on the unmutated broker fails.
See docs/mutation.md.
"""
