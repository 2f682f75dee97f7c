"""The AuthN service's one frozen config: command-line flags over `AIS_AUTHN_*` environment
variables over defaults. Secrets (the HMAC key, the superuser's password) are never logged."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

from ais.names import parse_duration_s

DEFAULT_PORT = 52001
DAY_S = 24 * 3600


def parse_lifetime_s(text: str) -> float:
    """`24h`, `90m`, `7d`, `3600` (seconds) or `1h30m`, in seconds; ValueError if malformed."""
    text = str(text).strip()
    if text.endswith("d") and text[:-1].replace(".", "", 1).isdigit():
        return float(text[:-1]) * DAY_S
    try:
        return float(text)
    except ValueError:
        return parse_duration_s(text)


@dataclass(frozen=True, slots=True)
class AuthnConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    conf_dir: str = ""
    secret_key: str = ""              # HS256 when set ...
    private_key_file: str = ""        # ... else RS256 with this key (generated when missing)
    issuer: str = ""                  # RS256 `iss` and OIDC discovery; default http://host:port
    su_name: str = "admin"
    su_pass: str = "admin"
    token_ttl_s: float = DAY_S
    max_token_ttl_s: float = 90 * DAY_S
    push_retry_s: float = 3.0         # revocations not yet delivered to a cluster: retry period
    push_timeout_s: float = 5.0       # one delivery attempt to one cluster URL
    log_level: str = "info"
    shutdown_s: float = 5.0

    @property
    def algorithm(self) -> str:
        return "HS256" if self.secret_key else "RS256"

    @property
    def key_path(self) -> str:
        return self.private_key_file or os.path.join(self.conf_dir, "private_key.pem")

    @property
    def issuer_url(self) -> str:
        return self.issuer or f"http://{self.host}:{self.port}"


def parse_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> AuthnConfig:
    """The config from flags and the environment; SystemExit (status 2) on a bad value."""
    env = os.environ if env is None else env
    ap = argparse.ArgumentParser(prog="aisauthn", description="AIStore AuthN: users, roles, clusters, tokens.")
    ap.add_argument("--host", default=env.get("AIS_AUTHN_HOST", "127.0.0.1"), help="listen address")
    ap.add_argument("--port", type=int, default=env.get("AIS_AUTHN_PORT", str(DEFAULT_PORT)),
                    help=f"listen port (env AIS_AUTHN_PORT; default {DEFAULT_PORT})")
    ap.add_argument("--conf-dir", default=env.get("AIS_AUTHN_CONF_DIR", ""),
                    help="directory of the persistent state: users, roles, clusters, revoked tokens "
                         "(env AIS_AUTHN_CONF_DIR; default ~/.config/ais/authn)")
    ap.add_argument("--secret-key", default=env.get("AIS_AUTHN_SECRET_KEY", ""),
                    help="HS256 signing secret (env AIS_AUTHN_SECRET_KEY); without it tokens are RS256")
    ap.add_argument("--private-key-file", default=env.get("AIS_AUTHN_PRIVATE_KEY_FILE", ""),
                    help="RS256 private key PEM, generated when missing (env AIS_AUTHN_PRIVATE_KEY_FILE; "
                         "default CONF_DIR/private_key.pem)")
    ap.add_argument("--issuer", default=env.get("AIS_AUTHN_ISSUER", ""),
                    help="the service's external URL: RS256 tokens' `iss` and OIDC discovery")
    ap.add_argument("--token-ttl", default=env.get("AIS_AUTHN_TTL", "24h"),
                    help="default token lifetime (env AIS_AUTHN_TTL; default 24h)")
    ap.add_argument("--max-token-ttl", default=env.get("AIS_AUTHN_MAX_TOKEN_TTL", "90d"),
                    help="longest lifetime a login may ask for (default 90d)")
    ap.add_argument("--push-retry", default=env.get("AIS_AUTHN_PUSH_RETRY", "3s"),
                    help="retry period of revocations not yet delivered to a cluster (default 3s)")
    ap.add_argument("--log-level", default=env.get("AIS_AUTHN_LOG_LEVEL", "info"))
    a = ap.parse_args(argv)
    try:
        ttl, max_ttl, retry = (parse_lifetime_s(a.token_ttl), parse_lifetime_s(a.max_token_ttl),
                               parse_lifetime_s(a.push_retry))
    except ValueError as exc:
        ap.error(str(exc))
    if ttl <= 0 or max_ttl <= 0 or retry <= 0:
        ap.error("token lifetimes and the push retry period must be positive")
    if not 0 < a.port <= 65535:
        ap.error(f"invalid port {a.port}")
    conf_dir = a.conf_dir or os.path.join(os.path.expanduser("~"), ".config", "ais", "authn")
    return AuthnConfig(host=a.host, port=a.port, conf_dir=conf_dir, secret_key=a.secret_key,
                       private_key_file=a.private_key_file, issuer=a.issuer.rstrip("/"),
                       su_name=env.get("AIS_AUTHN_SU_NAME", "admin") or "admin",
                       su_pass=env.get("AIS_AUTHN_SU_PASS", "admin") or "admin",
                       token_ttl_s=min(ttl, max_ttl), max_token_ttl_s=max_ttl, push_retry_s=retry,
                       log_level=a.log_level)
