"""ejabberd's mod_mqtt (3.1.1 and 5.0 on one listener), Debian package ``ejabberd``.

The node is started straight with ``erl`` rather than ``ejabberdctl foreground``: ejabberdctl switches
to the ``ejabberd`` user when run as root, registers a fixed node name with epmd and defaults to
/etc, /var/lib and /var/log. Here the node is not distributed at all (no epmd, no distribution port);
config, Mnesia spool and logs all live in the broker's temporary workdir, and the only port opened
is the MQTT listener on loopback. SIGTERM to the process group stops the VM cleanly.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

from ..codec.version import Version
from ..resources import BROKER_FIXTURES
from .base import EmbeddedBroker, launcher

TEMPLATE = BROKER_FIXTURES / "ejabberd" / "ejabberd.yml"
APP_GLOBS = ("/usr/lib/*/ejabberd-*/ebin/ejabberd.app", "/usr/lib/ejabberd*/ebin/ejabberd.app",
             "/usr/lib/erlang/lib/ejabberd-*/ebin/ejabberd.app")


def ejabberd_lib_dir() -> str | None:
    """The directory to put in ERL_LIBS so that the ejabberd application is found."""
    for pattern in APP_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return str(Path(found[-1]).parents[2])
    return None


@launcher
class Ejabberd(EmbeddedBroker):
    name = "ejabberd"
    versions = (Version.V311, Version.V50)
    # Anonymous auth (login_anon) accepts any username; a CONNECT without one is refused.
    credentials: tuple[str, str] | None = ("conformance", "conformance")  # (username, password)
    start_timeout = 30.0
    loglevel = "warning"

    @classmethod
    def available(cls) -> bool:
        return shutil.which("erl") is not None and ejabberd_lib_dir() is not None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for key in ("ERL_FLAGS", "ERL_AFLAGS", "ERL_ZFLAGS", "ERL_EPMD_PORT"):
            env.pop(key, None)
        env.update({
            "EJABBERD_CONFIG_PATH": str(self.workdir / "ejabberd.yml"),
            "EJABBERD_LOG_PATH": str(self.workdir / "logs" / "ejabberd.log"),
            "ERL_LIBS": ejabberd_lib_dir() or "",
            "ERL_CRASH_DUMP": str(self.workdir / "logs" / "erl_crash.dump"),
            "ERL_CRASH_DUMP_BYTES": "0",
            "HOME": str(self.workdir),
        })
        return env

    def command(self) -> list[str]:
        (self.workdir / "spool").mkdir()
        (self.workdir / "logs").mkdir()
        self.write_config(TEMPLATE, port=self.one_port(), loglevel=self.loglevel)  # EJABBERD_CONFIG_PATH
        spool = str(self.workdir / "spool").replace("\\", "\\\\").replace('"', '\\"')
        return [
            shutil.which("erl") or "erl", "+K", "true", "+P", "250000", "-noinput",
            "-mnesia", "dir", f'"{spool}"', "-s", "ejabberd",
        ]
