"""3.1 CONNECT credentials: User Name and Password flags and fields, accepted and refused logins.

Cases that need the target to check passwords use the profile's identities "valid" and "bad_password"
(capability ``password_auth``); "credentials_required" says the target refuses anonymous clients.
"""

from conformance import Connect, NonStrict, Unsupported, case, craft
from conformance.run.profile import Identity
from conformance.steps.connect import (
    BAD_CREDENTIALS,
    MALFORMED_CONNECT,
    connect_flags,
    expect_refusal,
    publish_after_refused_connect,
)


def identity(target, name: str) -> Identity:  # noqa: ANN001
    found = target.profile.identities.get(name)
    if found is None:
        raise Unsupported(f"the target profile has no [identities.{name}]")
    return found


def refuse(probe, mqtt_version: str) -> None:  # noqa: ANN001
    """A refused login: 5.0 closes, optionally after CONNACK 0x86 / 0x87; 3.1.1 closes and should send
    CONNACK 0x04 / 0x05 first."""
    connack = expect_refusal(probe, BAD_CREDENTIALS[mqtt_version])
    if connack is None and mqtt_version == "3.1.1":
        raise NonStrict("the server closed the connection without the CONNACK (0x04 or 0x05) it should send")


@case("MQTT-3.1.4-4", v5=["MQTT-3.1.4-5"], requires=["password_auth"])
def test_valid_credentials_are_accepted(make_probe, target):
    """A CONNECT with the user name and password of a known identity gets CONNACK 0x00."""
    probe = make_probe(identity=identity(target, "valid")).connect()
    probe.ping()


@case("MQTT-3.2.2-4", "MQTT-3.2.2-5",
      v5=["MQTT-3.1.4-2", "MQTT-3.2.2-6", "MQTT-3.2.2-7", "MQTT-3.2.2-8", "MQTT-3.14.0-1", "MQTT-4.13.2-1"],
      requires=["password_auth"])
def test_wrong_password_is_refused(make_probe, target, mqtt_version):
    """A known user name with a wrong password is refused: the connection is closed, after (3.1.1: as the
    spec advises; 5.0: optionally) a CONNACK 0x04 / 0x86 Bad user name or password or 0x05 / 0x87 Not
    authorized, with Session Present 0."""
    probe = make_probe(identity=identity(target, "bad_password"))
    probe.send(probe.connect_packet())
    refuse(probe, mqtt_version)


@case("MQTT-3.2.2-4", "MQTT-3.2.2-5",
      v5=["MQTT-3.1.4-2", "MQTT-3.2.2-6", "MQTT-3.2.2-7", "MQTT-3.2.2-8", "MQTT-3.14.0-1"],
      requires=["credentials_required"])
def test_anonymous_client_is_refused_where_credentials_are_required(make_probe, mqtt_version):
    """A target that requires credentials refuses a CONNECT without user name and password, like a wrong
    password (CONNACK 0x04 / 0x05, 5.0 0x86 / 0x87, or none in 5.0) and closes the connection."""
    probe = make_probe(identity=Identity())
    probe.send(probe.connect_packet())
    refuse(probe, mqtt_version)


@case("MQTT-3.1.4-5", v5=["MQTT-3.1.4-6", "MQTT-3.1.4-2"], requires=["password_auth"])
def test_packets_after_a_wrong_password_are_not_processed(make_probe, target, topic_prefix, mqtt_version):
    """A retained QoS 1 PUBLISH sent right behind a CONNECT with a wrong password is not processed: it
    reaches neither a subscriber nor the retained store."""
    refused = make_probe(identity=identity(target, "bad_password"), name="refused")
    publish_after_refused_connect(make_probe, refused, refused.connect_packet(),
                                  f"{topic_prefix}/after-bad-login", BAD_CREDENTIALS[mqtt_version])


@case("MQTT-3.1.4-1", "MQTT-4.8.0-1")
def test_password_without_user_name_closes_the_connection(make_probe):
    """3.1.1: a Password Flag of 1 with a User Name Flag of 0 makes the CONNECT non-conforming: the server
    closes the connection without a CONNACK."""
    probe = make_probe(identity=Identity())
    probe.send(Connect(client_id=probe.client_id, password=b"mqttc-password"))
    expect_refusal(probe, connack="forbidden")


@case("MQTT-3.1.4-1",
      v5=["MQTT-3.1.4-1", "MQTT-3.14.0-1"])
def test_flagged_credential_missing_from_payload_closes_the_connection(make_probe, mqtt_version):
    """A CONNECT whose User Name Flag, or Password Flag, is 1 while the payload ends before that field does
    not conform: the server closes the connection (3.1.1: without a CONNACK; 5.0: optionally after CONNACK
    0x81 or 0x82)."""
    for field, flag, user in (("user name", 0x80, None), ("password", 0x40, "mqttc-user")):
        probe = make_probe(identity=Identity(), name=f"no-{field.replace(' ', '')}")
        connect = probe.connect_packet(username=user)
        probe.send(craft(connect, connect_flags=connect_flags(probe, connect) | flag,
                         label=f"CONNECT with the {field} flag set and no {field} field"))
        if mqtt_version == "3.1.1":
            expect_refusal(probe, connack="forbidden")
        else:
            expect_refusal(probe, MALFORMED_CONNECT)
