"""mqtt-conformance: an MQTT 3.1.1 and 5.0 broker conformance harness."""

from .about import __version__  # noqa: E402,F401
from .case import SAME, case  # noqa: E402
from .codec import *  # noqa: E402,F403
from .codec import __all__ as _codec_all  # noqa: E402
from .probe import Closed, Probe  # noqa: E402
from .verdicts import (  # noqa: E402
    MAY,
    MUST,
    SHOULD,
    BrokerGone,
    BrokerViolation,
    Informational,
    NonStrict,
    Unsupported,
    Verdict,
)

__all__ = [
    *_codec_all, "MAY", "MUST", "SAME", "SHOULD", "BrokerGone", "BrokerViolation", "Closed", "Informational",
    "NonStrict", "Probe", "Unsupported", "Verdict", "case",
]
