"""Throw-away certificates for TLS tests: a CA, a server certificate for 127.0.0.1/localhost, a client
certificate, and a second CA that signed nothing the broker uses (for "wrong CA" checks). Made with
the openssl command line at test time; nothing is checked in."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..codec.errors import HarnessError


@dataclass(frozen=True)
class CertSet:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if proc.returncode:
        raise HarnessError(f"openssl {args[0]} failed: {proc.stderr.strip()[-300:]}")


def _ca(name: str, cwd: Path) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=cwd)


def _signed(name: str, ca: str, cwd: Path, san: str | None = None) -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", cwd=cwd)
    ext = cwd / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-days", "2", "-out", f"{name}.pem", "-extfile", ext.name, cwd=cwd)


def make_certs(folder: Path) -> CertSet:
    if shutil.which("openssl") is None:
        raise HarnessError("openssl is not installed (apt-get install openssl)")
    folder.mkdir(parents=True, exist_ok=True)
    _ca("ca", folder)
    _ca("other-ca", folder)
    _signed("server", "ca", folder, san="IP:127.0.0.1,DNS:localhost")
    _signed("client", "ca", folder)
    return CertSet(folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "client.pem",
                   folder / "client.key", folder / "other-ca.pem")
