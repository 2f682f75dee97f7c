"""target.fs: mountpaths, the on-disk layout, object metadata, and the executors for file I/O.

Invariants:
- every path handed out is inside a mountpath (names are validated by `ais.names`);
- objects become visible only by an atomic rename of a fully written, fsynced work file;
- nothing here blocks the event loop: blocking functions are called through `Mountpaths.run`.
"""
