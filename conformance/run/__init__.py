"""One run of the suite: options, the target profile, the resolved target, the broker it starts, the
order of the cases, their records and the deadline of each."""
