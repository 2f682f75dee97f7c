"""A real AuthN service (`python -m ais.authn`) for tests: a subprocess on 127.0.0.1 with its own
state directory, waited for on its health endpoint.

    with authn_service(tmp_path, hs_secret="s3cret") as svc:      # or RS256 without hs_secret
        token = svc.admin_token                                    # a fresh admin login
        svc.public_key_pem()                                       # RS256: for auth.signature_key
        requests.get(f"{svc.url}/v1/users", headers=svc.auth(token))
        svc.kill(); svc.start()                                    # kill -9 and restart, same state

The `authn_service` fixture of tests/conftest.py starts these and stops them after the test.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Iterator

import requests

ADMIN, ADMIN_PASS = "admin", "admin"


def free_port() -> int:
    """A free port below the kernel's ephemeral range (where outgoing connections take theirs)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


class AuthnService:
    def __init__(self, root: str, *, hs_secret: str | None = None, su: tuple[str, str] = (ADMIN, ADMIN_PASS),
                 push_retry: str = "0.3s", env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.root = str(root)
        os.makedirs(self.root, exist_ok=True)
        self.conf_dir = os.path.join(self.root, "authn-conf")
        self.log_path = os.path.join(self.root, "authn.log")
        self.hs_secret = hs_secret
        self.su_name, self.su_pass = su
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AIS_AUTHN_")}
        self.env.update(AIS_AUTHN_SU_NAME=self.su_name, AIS_AUTHN_SU_PASS=self.su_pass,
                        AIS_AUTHN_PRIVATE_KEY_FILE=os.path.join(self.conf_dir, "key.pem"))
        if hs_secret:
            self.env["AIS_AUTHN_SECRET_KEY"] = hs_secret
        self.env.update(env or {})
        self.args = ("--conf-dir", self.conf_dir, "--push-retry", push_retry, *args)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key_path(self) -> str:
        return self.env["AIS_AUTHN_PRIVATE_KEY_FILE"]

    def public_key_pem(self) -> str:
        """RS256: the public key a cluster verifies tokens with (`auth.signature_key`)."""
        from cryptography.hazmat.primitives import serialization
        with open(self.key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        return key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def start(self, timeout_s: float = 20.0) -> "AuthnService":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "ais.authn", "--port", str(self.port), *self.args],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"AuthN exited with {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"AuthN not ready in {timeout_s}s:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM and wait (a graceful stop)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """kill -9."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def login(self, user: str, password: str, expires_in_s: float | None = None) -> str:
        body: dict[str, Any] = {"password": password}
        if expires_in_s is not None:
            body["expires_in"] = int(expires_in_s * 1e9)
        r = requests.post(f"{self.url}/v1/users/{user}", json=body, timeout=10)
        r.raise_for_status()
        return str(r.json()["token"])

    @property
    def admin_token(self) -> str:
        return self.login(self.su_name, self.su_pass)

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def __enter__(self) -> "AuthnService":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def authn_service(tmp_path: Any, *, hs_secret: str | None = None, **kw: Any) -> Iterator[AuthnService]:
    """A started AuthN service, stopped on exit (its log printed if the block failed)."""
    svc = AuthnService(str(tmp_path), hs_secret=hs_secret, **kw).start()
    try:
        yield svc
    except BaseException:
        print(f"--- AuthN log ({svc.log_path}) ---\n{svc.log()}")
        raise
    finally:
        svc.stop()
