"""Reusable steps of cases, one module per area: common (several packets many cases need, the sentinel
and PINGREQ barriers, the first answer to a bad packet), connect (refusals), malformed (broken packets),
publish (QoS flows), topics (filters, names), v5 (5.0 flow control, properties), will (observing Wills).
Steps that judge a reaction to a bad packet classify it with conformance.judge."""
