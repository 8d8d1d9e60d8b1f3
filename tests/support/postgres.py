"""A throwaway PostgreSQL cluster for tests and benchmarks (Debian's server binaries).

``initdb`` refuses to run as root, so as root the cluster runs as the ``postgres`` user
that Debian's package creates; otherwise as the current user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")


def pg_bin() -> Path:
    """Where initdb and pg_ctl live."""
    for candidate in PG_BIN_CANDIDATES:
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresCluster:
    datadir: Path
    port: int
    run_as: str | None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    options: str = ""

    def pause(self) -> None:
        """Stop the server (fast shutdown: connections are cut), keeping its data."""
        subprocess.run(
            self._cmd(str(pg_bin() / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "stop"),
            capture_output=True,
            check=True,
        )

    def resume(self) -> None:
        subprocess.run(
            self._cmd(
                *(str(pg_bin() / "pg_ctl"), "-D", str(self.datadir), "-o", self.options),
                *("-l", str(self.datadir.parent / "postgres.log"), "-w", "-t", "30", "start"),
            ),
            capture_output=True,
            check=True,
        )
        _wait_for_port(self.port)

    def stop(self) -> None:
        subprocess.run(
            self._cmd(str(pg_bin() / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start_postgres() -> PostgresCluster:
    """initdb a fresh cluster in a temp dir and start it on a free loopback port (~2 s)."""
    run_as = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="pgtest-"))
    datadir = root / "data"
    if run_as:
        shutil.chown(root, user=run_as)
        os.chmod(root, 0o700)
    cluster = PostgresCluster(datadir=datadir, port=free_port(), run_as=run_as)
    bindir = pg_bin()
    subprocess.run(
        cluster._cmd(
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={cluster.port} -c fsync=off "
        f"-c synchronous_commit=off -c full_page_writes=off -c unix_socket_directories={root} "
        "-c max_connections=200"
    )
    cluster.options = options
    subprocess.run(
        cluster._cmd(
            str(bindir / "pg_ctl"),
            "-D",
            str(datadir),
            "-o",
            options,
            "-l",
            str(root / "postgres.log"),
            "-w",
            "-t",
            "30",
            "start",
        ),
        check=True,
        capture_output=True,
    )
    _wait_for_port(cluster.port)
    return cluster


def _wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"PostgreSQL did not start on port {port}")
