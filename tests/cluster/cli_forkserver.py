"""A fork server for running the `ais` CLI many times in tests without paying for a fresh
interpreter and its imports each time (about 0.3 s of CPU per command, most of a CLI test's cost).

The server is a separate, single-threaded process that has imported `ais.cli.main` and nothing
else; for each command it forks a child that takes the caller's pipes as its stdin, stdout and
stderr (passed over a Unix socket), the caller's environment and working directory, runs
`ais.cli.main.main(argv)` and reports its exit status. Each command is still its own process with
its own stdio and exit code; tests that need the real entry point or a terminal run the
interpreter directly.

Run as `python -m tests.cluster.cli_forkserver SOCKET_PATH`; use `ForkServer` from tests.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any

_LEN = struct.Struct("!I")


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def serve(path: str) -> None:
    import ais.cli.main as cli   # the point: imported once, inherited by every child
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # children are reaped by the kernel
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        msg, fds, _, _ = socket.recv_fds(conn, _LEN.size, 3)
        request = json.loads(_recv_exact(conn, _LEN.unpack(msg)[0]))
        if os.fork() == 0:
            srv.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            os.environ.clear()
            os.environ.update(request["env"])
            os.chdir(request["cwd"])
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code: Any = 1
            try:
                cli.main(request["argv"])
                code = 0
            except SystemExit as exc:
                code = exc.code
            except BaseException:  # noqa: BLE001 - shown to the test as the command's stderr
                traceback.print_exc()
            finally:   # never back into the server's loop
                status = code if isinstance(code, int) else (0 if code is None else 1)
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    conn.sendall(_LEN.pack(status))
                finally:
                    os._exit(status)
        conn.close()
        for fd in fds:
            os.close(fd)


class ForkServer:
    """The test side: `run(argv, env, cwd, stdin)` -> (exit status, stdout, stderr)."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ais-cli-")   # short: a socket path has a length limit
        self.path = os.path.join(self.dir, "sock")
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.cluster.cli_forkserver", self.path],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=root)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == b"ready", "the CLI fork server did not start"

    def run(self, argv: list[str], env: dict[str, str], cwd: str | None, stdin: bytes | None,
            timeout_s: float) -> tuple[int, bytes, bytes]:
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(self.path)
            body = json.dumps({"argv": argv, "env": env, "cwd": cwd or os.getcwd()}).encode()
            socket.send_fds(conn, [_LEN.pack(len(body))], [in_r, out_w, err_w])
            conn.sendall(body)
            for fd in (in_r, out_w, err_w):
                os.close(fd)
            if stdin:
                os.write(in_w, stdin)   # small inputs only: the pipe buffer holds them
            os.close(in_w)
            out, err = self._drain(out_r, err_r, timeout_s)
            status = _LEN.unpack(_recv_exact(conn, _LEN.size))[0]
        return status, out, err

    @staticmethod
    def _drain(out_r: int, err_r: int, timeout_s: float) -> tuple[bytes, bytes]:
        got = {out_r: b"", err_r: b""}
        open_fds = [out_r, err_r]
        deadline = time.monotonic() + timeout_s
        while open_fds:
            assert time.monotonic() < deadline, f"the command did not finish in {timeout_s}s"
            ready, _, _ = select.select(open_fds, [], [], 1.0)
            for fd in ready:
                chunk = os.read(fd, 65536)
                if chunk:
                    got[fd] += chunk
                else:
                    open_fds.remove(fd)
                    os.close(fd)
        return got[out_r], got[err_r]

    def close(self) -> None:
        self.proc.terminate()   # our own child, by its handle
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        os.remove(self.path)
        os.rmdir(self.dir)


if __name__ == "__main__":
    serve(sys.argv[1])
