"""`aisnode --role proxy|target --config FILE`: run one node in this process.

The role implementation is looked up as an entry point in the `ais.roles` group (see
pyproject.toml), so this module never imports `proxy` or `target` directly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from importlib.metadata import entry_points
from typing import Awaitable, Callable

from ais import config as config_mod
from ais import log as log_mod
from ais.errors import AisError

RoleMain = Callable[[config_mod.Config, asyncio.Event], Awaitable[None]]


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """A server process's loop: uvloop, then `main(stop)` until it returns; SIGTERM and SIGINT
    set `stop` (the graceful shutdown). Used by every node and by the AuthN service."""
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a hard dependency; fall back anyway
        pass

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


def _load_role(role: str) -> RoleMain:
    found = [ep for ep in entry_points(group="ais.roles") if ep.name == role]
    if not found:
        raise SystemExit(f"aisnode: unknown role {role!r} (installed: "
                         f"{sorted(ep.name for ep in entry_points(group='ais.roles'))})")
    fn: RoleMain = found[0].load()
    return fn


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="aisnode", description="Run one proxy or target node.")
    ap.add_argument("--role", choices=["proxy", "target"], help="node role (overrides node.role)")
    ap.add_argument("--config", help="JSON config file; AIS_<SECTION>_<KEY> variables override it")
    args = ap.parse_args(argv)
    try:
        cfg = config_mod.load(args.config)
    except (OSError, ValueError, AisError) as exc:
        raise SystemExit(f"aisnode: cannot load config: {exc}") from exc
    if args.role:
        cfg = cfg.updated({"node.role": args.role})
    log_mod.setup(cfg.log.level, cfg.node.role, cfg.log.file)
    run_role = _load_role(cfg.node.role)

    try:
        run_until_signalled(lambda stop: run_role(cfg, stop))
    except Exception:
        logging.getLogger("aisnode").exception("node failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
