"""3.1.4 CONNECT actions: a listener that requires a client certificate refuses a client without one.
Runs where the target names such a listener (capability ``client_certificate_url``)."""

from __future__ import annotations

from conformance import BrokerGone, Connack, Unsupported, case
from conformance.net import TlsOptions


@case(v5=["MQTT-3.1.4-2"])
def test_client_without_the_required_certificate_is_refused(make_probe, capabilities, target):
    """Where the server requires a client certificate, a client that presents none is not accepted:
    the TLS handshake fails, or the server refuses the CONNECT (CONNACK 0x87 / 0x86) and closes the
    connection; it never answers CONNACK 0x00."""
    url = capabilities.get("client_certificate_url")
    if not url:
        raise Unsupported("the target names no listener that requires a client certificate")
    probe = make_probe(url=url)
    probe.tls = TlsOptions(ca_file=target.tls.ca_file, insecure=target.tls.insecure)  # no certificate
    try:
        probe.send(probe.connect_packet())
    except BrokerGone:
        return  # refused during the TLS handshake
    answer = probe.next()
    if isinstance(answer, Connack):
        assert answer.reason_code >= 0x80, "a client without the required certificate was accepted"
        probe.expect_closed()
    else:
        assert answer is None and probe.closed is not None, f"expected a refusal, got {answer}"
