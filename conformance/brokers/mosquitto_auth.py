"""Eclipse Mosquitto with an MQTT 5.0 extended authentication method, for the 3.15 / 4.12 cases.

mosquitto 2.0 does enhanced authentication only through a plugin and ships none, so this broker builds
one at start: fixtures/brokers/mosquitto-auth/mqttc_auth_plugin.c, compiled with gcc into the broker's
workdir (no binary is checked in) against the plugin headers of the Debian package mosquitto-dev
(mosquitto_broker.h, mosquitto_plugin.h) and libmosquitto-dev (mosquitto.h). It implements the method
``MQTTC-CHALLENGE`` (scheme in the C file and in cases/test_3_15_auth.py): the server challenges with
AUTH 0x18 and 16 random bytes, the client answers AUTH 0x18 with those bytes bit-inverted.

Everything else is the embedded mosquitto (same listeners, password file, dynamic-security plugin), so
fixtures/targets/mosquitto-auth.toml is mosquitto.toml plus the method.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..codec.errors import HarnessError
from ..resources import BROKER_FIXTURES
from .base import launcher
from .mosquitto import Mosquitto, mosquitto_binary

PLUGIN_SOURCE = BROKER_FIXTURES / "mosquitto-auth/mqttc_auth_plugin.c"
AUTH_METHOD = "MQTTC-CHALLENGE"
HEADERS = ("mosquitto.h", "mosquitto_broker.h", "mosquitto_plugin.h")
INCLUDE_DIRS = ("/usr/include", "/usr/local/include")
INSTALL_HINT = "apt-get install gcc mosquitto-dev libmosquitto-dev (or .ci/install-brokers mosquitto)"


def compiler() -> str | None:
    return shutil.which("gcc") or shutil.which("cc")


def missing_headers() -> list[str]:
    """The plugin headers found in none of the include directories."""
    return [h for h in HEADERS if not any((Path(d) / h).is_file() for d in INCLUDE_DIRS)]


def build_plugin(out_dir: Path) -> Path:
    """Compile the plugin into ``out_dir``; HarnessError naming what is missing or the compiler's error."""
    cc = compiler()
    if cc is None:
        raise HarnessError(f"mosquitto-auth: no C compiler (gcc) to build the auth plugin; {INSTALL_HINT}")
    missing = missing_headers()
    if missing:
        raise HarnessError(f"mosquitto-auth: plugin headers {', '.join(missing)} not found in "
                           f"{' or '.join(INCLUDE_DIRS)}; {INSTALL_HINT}")
    library = out_dir / "mqttc_auth_plugin.so"
    cmd = [cc, "-std=gnu11", "-O2", "-Wall", "-fPIC", "-shared", "-o", str(library), str(PLUGIN_SOURCE)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HarnessError(f"mosquitto-auth: cannot run {cc}: {exc}") from None
    if proc.returncode != 0 or not library.is_file():
        raise HarnessError(f"mosquitto-auth: building {PLUGIN_SOURCE.name} failed ({' '.join(cmd)}): "
                           f"{(proc.stderr or proc.stdout).strip()[-1500:]}")
    return library


@launcher
class MosquittoAuth(Mosquitto):
    name = "mosquitto-auth"
    auth_method = AUTH_METHOD

    @classmethod
    def available(cls) -> bool:
        return mosquitto_binary() is not None and compiler() is not None and not missing_headers()

    def security_config(self) -> list[str]:
        # mosquitto 2.0 takes several plugin lines; plugin_opt_* lines apply to the plugin line above them.
        library = build_plugin(self.workdir)
        return [*super().security_config(), f"plugin {library}", f"plugin_opt_method {self.auth_method}"]
