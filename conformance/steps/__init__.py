"""Reusable steps of cases, one module per area: common (several packets many cases need), connect
(refusals), malformed (broken packets), publish (QoS flows, sentinels), topics (filters, names), v5
(5.0 flow control, properties), will (observing Wills)."""
