"""Drive a running annotation server with annotators over real HTTP: load tests and durability checks (a test
harness, shared with bench/bench_annotate_load.py; not part of the package).

Each client logs in with its token, then repeats what the page does (GET /api/next, think, POST /api/answer)
and records every request's latency and status, and which assignments the server acknowledged (2xx).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    url: str

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash or an OOM kill."""
        self.process.kill()
        self.process.wait()


@contextlib.contextmanager
def running_server(db: str | Path, port: int | None = None, startup_timeout: float = 60.0,
                   log: Path | None = None) -> Iterator[Server]:
    """`prefcap annotate` in a child process, ready when /healthz answers; stopped on exit. With `log`, everything
    it prints (stdout and stderr, uvicorn's logs included) goes to that file."""
    port = port or free_port()
    command = [sys.executable, "-m", "prefcap.cli", "annotate", "--db", str(db), "--port", str(port)]
    output = open(log, "wb") if log else None  # noqa: SIM115 (closed in the finally below)
    process = subprocess.Popen(command, stdout=output or subprocess.DEVNULL, stderr=output or subprocess.PIPE,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = Server(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                said = log.read_text() if log else process.stderr.read().decode()
                raise RuntimeError(f"the server exited with {process.returncode}: {said}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer on {server.url} within {startup_timeout} s")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if output:
            output.close()
        else:
            process.stderr.close()


@dataclass
class ClientReport:
    latencies: list[float] = field(default_factory=list)  # seconds, every request after login
    statuses: list[int] = field(default_factory=list)
    acknowledged: list[int] = field(default_factory=list)  # assignment ids answered with a 2xx
    error: str | None = None  # why the client stopped early (e.g. the server went away)


def annotate_over_http(url: str, token: str, judgments: int, think_seconds: tuple[float, float] = (0.0, 0.05),
                       seed: int = 0) -> ClientReport:
    """One annotator: log in, then answer up to `judgments` items with random think times and answers."""
    rng = np.random.default_rng(seed)
    report = ClientReport()
    with httpx.Client(base_url=url, timeout=30.0) as client:
        try:
            login = client.get("/login", params={"token": token})  # 303 to the page, with the session cookie
            if login.status_code != 303:
                report.error = f"login failed: {login.status_code}"
                return report
            while len(report.acknowledged) < judgments:
                item = _timed(client, report, "GET", "/api/next")
                if item.status_code != 200 or item.json()["finished"]:
                    report.error = None if item.status_code == 200 else f"next: {item.status_code}"
                    break
                time.sleep(float(rng.uniform(*think_seconds)))
                assignment = item.json()["assignment_id"]
                answer = str(rng.choice(["left", "right", "tie"]))
                sent = _timed(client, report, "POST", "/api/answer",
                              json={"assignment_id": assignment, "answer": answer, "seconds": 1.0})
                if 200 <= sent.status_code < 300:
                    report.acknowledged.append(assignment)
        except httpx.TransportError as error:
            report.error = f"{type(error).__name__}: {error}"
    return report


def _timed(client: httpx.Client, report: ClientReport, method: str, path: str, **kwargs) -> httpx.Response:
    start = time.perf_counter()
    response = client.request(method, path, **kwargs)
    report.latencies.append(time.perf_counter() - start)
    report.statuses.append(response.status_code)
    return response


def run_clients(url: str, tokens: list[str], judgments: int, think_seconds: tuple[float, float] = (0.0, 0.05),
                seed: int = 0) -> list[ClientReport]:
    """All annotators at once, one thread each (the work is I/O-bound)."""
    reports: list[ClientReport | None] = [None] * len(tokens)

    def work(k: int) -> None:
        reports[k] = annotate_over_http(url, tokens[k], judgments, think_seconds, seed=seed * 1000 + k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return reports
