"""The HTTP API against hostile networks and clients (issue 14): TLS between clients and
workers and between workers, an access log without tokens, security headers, the encoded
path forwarded as sent, and slow or many clients that cannot starve a normal one."""

from __future__ import annotations

import hashlib
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from streamagg.batches import customer_partition
from tests.e2e.conftest import ADMIN_TOKEN
from tests.support.worker import WorkerProcess, http_get, wait_for

pytestmark = pytest.mark.timeout(240)
RANGE = {"from": "2026-01-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}


def report(worker: WorkerProcess, customer: str, client: httpx.Client | None = None) -> int:
    path = f"/api/v1/customers/{customer}/reports/tech-prefix"
    if client is None:
        return worker.get(path, ADMIN_TOKEN, **RANGE).status_code
    response = client.get(path, params=RANGE, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    return response.status_code


def test_security_headers_on_the_page_and_the_api(
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    worker = worker_factory()
    worker.wait_ready()
    for response in (
        worker.get("/"),
        worker.get("/api/v1/customers/42/reports/dtmf", ADMIN_TOKEN, **RANGE),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"


def test_the_access_log_names_the_request_never_the_token(
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    worker = worker_factory()
    quiet = worker_factory(STREAMAGG_WEB_ACCESS_LOG="off")
    worker.wait_ready()
    quiet.wait_ready()
    assert report(worker, "42") == 200
    assert worker.get("/api/v1/customers/42/reports/nope", ADMIN_TOKEN, **RANGE).status_code == 404
    assert report(quiet, "42") == 200
    prefix = hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()[:8]
    expected = f"GET 200 /api/v1/customers/42/reports/tech-prefix token={prefix} customer=42"

    def logged() -> bool:
        return expected in worker.log_path.read_text()

    wait_for(logged, 10, "the access log line")
    text = worker.log_path.read_text()
    assert f"GET 404 /api/v1/customers/42/reports/nope token={prefix}" in text
    assert ADMIN_TOKEN not in text
    assert "streamagg.access" not in quiet.log_path.read_text() and "token=" not in (
        quiet.log_path.read_text()
    )

    # A %0A in the path cannot write a line of its own in the log, and a token whose bytes
    # are not UTF-8 is an unknown token (401, the API's JSON error), not a server error.
    forged = "GET 200 /api/v1/customers/99 token=deadbeef"
    path = "/api/v1/customers/42%0A" + forged.replace(" ", "%20").replace("/", "%2F")
    with socket.create_connection(("127.0.0.1", worker.port), timeout=10) as raw:
        raw.sendall(
            f"GET {path}/reports/tech-prefix HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
            + b"Authorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n"
        )
        answer = b"".join(iter(lambda: raw.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b'"error"' in answer
    wait_for(lambda: "GET 401 /api/v1/customers/42%0A" in worker.log_path.read_text(), 10, "it")
    text = worker.log_path.read_text()
    assert not any(line.startswith(forged) for line in text.splitlines())
    assert "Traceback" not in text


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_for_clients_and_between_workers_with_the_encoded_path(
    worker_factory: Callable[..., WorkerProcess], certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    tls = {
        "STREAMAGG_WEB_TLS_CERTFILE": str(cert),
        "STREAMAGG_WEB_TLS_KEYFILE": str(key),
        "STREAMAGG_WEB_TLS_CAFILE": str(cert),
    }
    first, second = worker_factory(**tls), worker_factory(**tls)
    trust = ssl.create_default_context(cafile=str(cert))
    for worker in (first, second):
        https = httpx.Client(base_url=f"https://127.0.0.1:{worker.port}", verify=trust)

        def ready(client: httpx.Client = https) -> bool:
            try:
                return client.get("/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 120, "readiness over HTTPS")
    with pytest.raises(httpx.HTTPError):
        http_get(f"http://127.0.0.1:{first.port}/healthz", timeout=5)
    # Customer ids with a slash and a space, on every partition: some belong to the other
    # worker, and their encoded path must reach it as sent.
    customers = [f"acme/{n} x" for n in range(40)]
    partitions = int(first.env["STREAMAGG_PARTITIONS"])
    assert len({customer_partition(c, partitions) for c in customers}) == partitions
    with httpx.Client(base_url=f"https://127.0.0.1:{first.port}", verify=trust) as client:

        def all_answer() -> bool:
            return all(report(first, c.replace("/", "%2F"), client) == 200 for c in customers)

        wait_for(all_answer, 60, "every customer answered through the first worker")
    # The other worker answered some of them: forwarded, with the slash still encoded (sent
    # decoded, "acme/1 x" would not match the route there, and the answer would be a 404).
    assert "customer=acme/" in second.log_path.read_text()


def test_idle_and_slow_clients_do_not_starve_a_normal_one(
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    worker = worker_factory(STREAMAGG_WEB_IDLE_SECONDS="3")
    worker.wait_ready()
    idle = [socket.create_connection(("127.0.0.1", worker.port)) for _ in range(500)]
    slow = socket.create_connection(("127.0.0.1", worker.port))
    try:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):  # a header line a second, never the blank line that ends them
            time.sleep(1)
            slow.sendall(b"X-Slow: 1\r\n")
        assert worker.get("/healthz").status_code == 200, "a normal client is answered"
        assert report(worker, "42") == 200
        slow.settimeout(10)
        closed = False
        try:
            for _ in range(10):
                slow.sendall(b"X-Slow: 1\r\n")
                if slow.recv(1024) == b"":
                    closed = True
                    break
                time.sleep(1)
        except OSError:
            closed = True  # reset by the server
        assert closed, "the slow client's connection was never closed"
        idle[0].settimeout(10)
        assert idle[0].recv(1) == b"", "an idle connection stays open past the idle time"
    finally:
        for sock in [*idle, slow]:
            sock.close()


def test_connections_past_the_maximum_are_closed(
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    worker = worker_factory(STREAMAGG_WEB_MAX_CONNECTIONS="50", STREAMAGG_WEB_IDLE_SECONDS="60")
    worker.wait_ready()
    opened = [socket.create_connection(("127.0.0.1", worker.port)) for _ in range(80)]
    try:
        time.sleep(1)
        refused = 0
        for sock in opened:
            sock.settimeout(0.5)
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                if sock.recv(1024) == b"":
                    refused += 1
            except (OSError, TimeoutError):
                refused += 1
        assert refused >= 25
    finally:
        for sock in opened:
            sock.close()
