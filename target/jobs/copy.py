"""copy-bck and move-bck: every target sends its objects of the source bucket to their owners
in the destination bucket."""

from __future__ import annotations

import asyncio

from target.fs.walk import walk_sorted
from target.jobs.base import Job
from target.objects import copy_object_to, delete_local


class CopyBucketJob(Job):
    """copy-bck and move-bck: send every local object of src to the owner of its name in dst."""

    kind = "copy-bck"
    walks_local = True

    async def run(self) -> None:
        assert self.src is not None and self.dst is not None
        prefix = str(self.msg.get("prefix", ""))
        prepend = str(self.msg.get("prepend", ""))
        dry_run = bool(self.msg.get("dry_run", False))
        delete_source = self.kind == "move-bck"
        gate = self.gate(8)

        async def one(name: str, size: int) -> None:
            async with gate:
                await self.pace()
                try:
                    if not dry_run:
                        await copy_object_to(self.ctx, self.src, name, self.dst, prepend + name)  # type: ignore[arg-type]
                        if delete_source:
                            await delete_local(self.ctx, self.src, name)  # type: ignore[arg-type]
                    self.objects += 1
                    self.bytes += size
                except Exception as exc:  # noqa: BLE001 - counted, the job goes on
                    self.errors.append(f"{name}: {exc}")

        for mp in self.ctx.mountpaths.paths:
            root = self.ctx.mountpaths.bucket_dir(mp, self.src)
            batch = await self.ctx.mountpaths.run(mp, _list_all, root, prefix)
            async with asyncio.TaskGroup() as tg:
                for name, size in batch:
                    tg.create_task(one(name, size))
        if self.errors:
            raise RuntimeError(f"{len(self.errors)} objects failed, first: {self.errors[0]}")


class MoveBucketJob(CopyBucketJob):
    kind = "move-bck"


def _list_all(root: str, prefix: str) -> list[tuple[str, int]]:
    out = []
    for name, entry in walk_sorted(root, prefix):
        try:
            out.append((name, entry.stat().st_size))
        except FileNotFoundError:
            continue
    return out


