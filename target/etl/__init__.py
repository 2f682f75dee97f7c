"""ETL on a target: transformers (local processes or pods) per ETL, the communicators that hand
them objects, inline transforms on GET, the etl-bck / etl-listrange jobs, and the intra routes
(see README.md in etl/ for the whole picture)."""

from __future__ import annotations

from ais.etl import EtlMD
from target.context import TargetContext
from target.etl.manager import EtlManager


def attach(ctx: TargetContext) -> EtlManager:
    """Create the target's ETL manager and let it follow the ETL metadata (persisted ETLs start
    again after a restart)."""
    mgr = EtlManager(ctx)
    ctx.etl = mgr

    async def changed(md: EtlMD) -> None:
        ctx.spawn(mgr.reconcile(md), name=f"etl-reconcile-v{md.version}")
    ctx.store.subscribe_etl(changed)
    if ctx.store.etl is not None:
        ctx.spawn(mgr.reconcile(ctx.store.etl), name="etl-reconcile-start")
    return mgr
