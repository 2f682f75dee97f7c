"""`aisauthn` (or `python -m ais.authn`): run the AuthN service in this process.

Start-up: config from flags and environment, logging, the signing key and the state (both
loaded before the event loop starts), uvloop, then the listener. SIGTERM/SIGINT stop it:
stop accepting, drain in-flight requests, stop the revocation push loop.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Sequence

from ais import log as log_mod
from ais.authn.config import AuthnConfig, parse_args
from ais.authn.registry import Registry
from ais.authn.server import NODE_NAME, build_app
from ais.authn.store import Store, StoreError
from ais.authn.tokens import Signer
from ais.node import run_until_signalled
from ais.web import Listener

log = logging.getLogger("ais.authn")


async def serve(cfg: AuthnConfig, registry: Registry, signer: Signer, stop: asyncio.Event) -> None:
    listener = Listener(build_app(cfg, registry, signer), cfg.host, cfg.port, shutdown_s=cfg.shutdown_s)
    await listener.start()
    log.info("AuthN listening on http://%s:%d (%s tokens, state in %s)", cfg.host, cfg.port, signer.algorithm,
             cfg.conf_dir)
    try:
        await stop.wait()
    finally:
        log.info("AuthN stopping")
        await listener.stop()


def main(argv: Sequence[str] | None = None) -> None:
    cfg = parse_args(argv)
    log_mod.setup(cfg.log_level, NODE_NAME)
    try:
        signer = Signer.from_config(cfg)
        registry = Registry(cfg, Store(cfg.conf_dir), signer)
        registry.load()
    except (OSError, ValueError, StoreError) as exc:
        raise SystemExit(f"aisauthn: cannot start: {exc}") from exc

    try:
        run_until_signalled(lambda stop: serve(cfg, registry, signer, stop))
    except OSError as exc:   # the port is taken, the address is not ours
        raise SystemExit(f"aisauthn: cannot listen on {cfg.host}:{cfg.port}: {exc}") from exc
    except Exception:
        log.exception("AuthN failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
