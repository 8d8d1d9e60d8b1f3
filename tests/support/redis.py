"""A throwaway redis-server on loopback, without persistence (Debian's ``redis-server``)."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.devidp import free_port

REDIS_SERVER = "/usr/bin/redis-server"


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        """Kill the server (SIGKILL): every connection drops, nothing is kept."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    def restart(self) -> None:
        """Start an empty server again on the same port."""
        self.process = _spawn(self.port, self.workdir or Path("/tmp"))
        _wait_for_ping(self)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_redis(workdir: Path) -> RedisServer:
    """Start redis-server on a free port; return once it answers PING."""
    if not shutil.which(REDIS_SERVER):
        raise RuntimeError(f"{REDIS_SERVER} is missing: install Debian's redis-server package")

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = RedisServer(port=port, process=_spawn(port, workdir), workdir=workdir)
    _wait_for_ping(server)
    return server


def _spawn(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *(REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(workdir)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_ping(server: RedisServer) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=server.port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline or server.process.poll() is not None:
                server.stop()
                raise RuntimeError(f"redis-server did not start on port {server.port}") from None
            time.sleep(0.05)
