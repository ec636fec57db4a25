"""A throwaway PostgreSQL server for the team benchmark (issue 19): initdb in a temporary folder, started
on a free loopback port, stopped and removed at the end.

Unlike the tests' server (tests/conftest.py, which this reuses for finding the binaries, a port and making
databases) it keeps PostgreSQL's durable defaults: fsync, synchronous commit and full-page writes on, as a
team's server would run, because the benchmark measures what a ledger transaction costs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import PostgresServer, _free_port, _postgres_bin  # tests/ is on the benchmark's sys.path


class PostgresMissing(RuntimeError):
    """No PostgreSQL here to benchmark against."""


@contextmanager
def throwaway_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server with durable settings for the duration of the block (PostgresMissing without one)."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise PostgresMissing("PostgreSQL not installed (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="studio-bench-pg-"))  # short: the socket path must stay under ~100 bytes
    data, log = base / "data", base / "server.log"
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: the cluster is the postgres user's
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    try:
        subprocess.run(
            [
                *as_user,
                initdb,
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base}"
        started = subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "30", "-o", options, "start"],
            capture_output=True,
            text=True,
        )
        if started.returncode != 0:
            raise PostgresMissing(f"PostgreSQL did not start: {started.stderr.strip() or started.stdout.strip()}")
        yield PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
