"""A throw-away PostgreSQL server for tests and benchmarks: Debian's `postgresql` binaries, a cluster in a temporary
folder, a free port on 127.0.0.1, trust authentication, stopped and removed afterwards.

PostgreSQL refuses to run as root, so under root (as CI may be) the cluster belongs to, and runs as, an unprivileged
account (`postgres`, which the Debian package creates, else `nobody`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

SUPERUSER = "prefcap"


def postgres_bin() -> Path | None:
    """The folder of `initdb`/`pg_ctl`: Debian keeps them out of PATH, under /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]))
    return Path(candidates[-1]).parent if candidates else None


def missing() -> str | None:
    """Why no throw-away server can start here (None when one can)."""
    if postgres_bin() is None:
        return "no PostgreSQL server binaries (install Debian's `postgresql` package)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "no psycopg driver (pip install 'prefcap[postgres]')"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_user() -> str | None:
    """The account that runs the server: None (this one) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and no unprivileged account (postgres, nobody) to run PostgreSQL as")


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a fresh cluster; yields the server's base URL `postgresql+psycopg://prefcap@127.0.0.1:PORT`."""
    reason = missing()
    if reason:
        raise RuntimeError(reason)
    binaries, user = postgres_bin(), _server_user()
    folder = Path(tempfile.mkdtemp(prefix="prefcap-pg-"))
    data = folder / "data"
    if user:
        account = pwd.getpwnam(user)
        os.chown(folder, account.pw_uid, account.pw_gid)
    port = _free_port()

    def run(*command: str) -> None:
        subprocess.run([str(binaries / command[0]), *command[1:]], user=user, check=True, capture_output=True,
                       cwd=folder)

    try:
        run("initdb", "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-sync")
        # fsync stays on: the kill test checks that an acknowledged judgment is on disk
        options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={folder} -c max_connections=200"
        run("pg_ctl", "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "-t", "60", "start")
    except subprocess.CalledProcessError as error:
        log = folder / "server.log"
        said = (error.stderr or b"").decode() + (log.read_text() if log.is_file() else "")
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"the throw-away PostgreSQL server did not start: {said.strip()}") from None
    try:
        yield f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def create_database(server: str, name: str) -> str:
    """A new empty database on the server; returns its URL."""
    import psycopg

    host_port = server.split("@", 1)[1]
    with psycopg.connect(f"postgresql://{SUPERUSER}@{host_port}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"
