"""Run `streamagg worker` as a subprocess against the test broker and talk to it over HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

READY_TIMEOUT_S = 120.0

# httpx.get makes a client per call, and each client a TLS context that reads every trusted CA
# certificate (~50 ms of CPU), even for http://: half the time of the report-correctness test.
# One context made once keeps each call's own client and connection, as before, for ~4 ms.
_TLS = ssl.create_default_context()


def http_get(url: str, **kwargs: Any) -> httpx.Response:
    """httpx.get, without a TLS context of its own per call (see _TLS)."""
    return httpx.get(url, verify=_TLS, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll condition until it holds; TimeoutError (not an AssertionError) when it never does,
    so that a test marked xfail(raises=AssertionError) cannot pass by timing out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def write_tokens(path: Path, tokens: dict[str, list[str]]) -> Path:
    """A tokens file granting each clear-text token its customers (SPEC §3 format)."""
    entries = [
        {"sha256": hashlib.sha256(token.encode()).hexdigest(), "customers": customers}
        for token, customers in tokens.items()
    ]
    path.write_text(json.dumps({"tokens": entries}))
    return path


@dataclass
class WorkerProcess:
    """One worker subprocess; restartable on the same data folder and port."""

    env: dict[str, str]
    data_dir: Path
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamagg.cli", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir.parent,
        )
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_S, tolerate_exit: bool = False) -> None:
        """Until /readyz says 200; an exit of the worker fails at once, unless
        ``tolerate_exit`` (someone restarts it: the fault suite's supervisor)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            exited = self.process is not None and self.process.poll() is not None
            if exited and not tolerate_exit:
                raise AssertionError(
                    f"worker exited with {self.process.returncode}:\n{self.tail()}"  # type: ignore[union-attr]
                )
            try:
                response = http_get(f"{self.base_url}/readyz", timeout=2)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.3)
        raise AssertionError(f"worker not ready after {timeout:.0f} s ({last}):\n{self.tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, as a crash or an OOM kill would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def get(self, path: str, token: str | None = None, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return http_get(f"{self.base_url}{path}", params=params, headers=headers, timeout=30)

    def get_all_pages(self, path: str, token: str, **params: str) -> httpx.Response:
        """GET a report; when it comes in pages, follow every `next` and return the last
        response with the rows of all pages in its JSON (or the first non-200 response)."""
        response = self.get(path, token, **params)
        rows: list[object] = []
        while response.status_code == 200:
            body = response.json()
            rows += body["rows"]
            if "next" not in body:
                body["rows"] = rows
                response._content = json.dumps(body).encode()
                return response
            response = http_get(
                f"{self.base_url}{body['next']}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        return response


def worker_env(
    bootstrap: str,
    name: str,
    data_dir: Path,
    port: int,
    tokens_file: Path | None = None,
    **extra: str,
) -> dict[str, str]:
    """Environment of a worker whose topics and groups are private to one test (prefix name)."""
    env = {
        **os.environ,
        "STREAMAGG_BROKER": f"kafka://{bootstrap}",
        "STREAMAGG_APP_ID": name,
        "STREAMAGG_TOPIC": f"{name}-cdrs",
        "STREAMAGG_DLQ_TOPIC": f"{name}-dlq",
        "STREAMAGG_DIDS_TOPIC": f"{name}-dids",
        "STREAMAGG_DATA_DIR": str(data_dir),
        "STREAMAGG_WEB_PORT": str(port),
        "STREAMAGG_WEB_HOST": "127.0.0.1",
        "STREAMAGG_WEB_BIND": "127.0.0.1",
        "STREAMAGG_PARTITIONS": "4",
        "STREAMAGG_LOG_LEVEL": "info",
        "PYTHONUNBUFFERED": "1",
    }
    if tokens_file is not None:
        env["STREAMAGG_TOKENS_FILE"] = str(tokens_file)
    env.update(extra)
    return env
