"""Building blocks for the portal tests: sample lists and users, a real server, raw requests."""

from __future__ import annotations

import http.client
import os
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from dagster_project.exports.lists import TeamList, write_target_lists
from dagster_project.portal.db import DB_NAME, ensure_private_dir
from dagster_project.portal.users import add_user

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# scrypt at N=2^12 instead of the production 2^17 (settings.portal_scrypt_log2_n): a sign-in costs
# milliseconds, not half a second. test_portal_signin.py and the hash tests of test_users_cli.py
# run at the production cost on purpose.
TEST_SCRYPT = {"CRM_PORTAL_SCRYPT_LOG2_N": "12"}

# username -> (team, role, password)
USERS: dict[str, tuple[str | None, str, str]] = {
    "alice": ("north", "agent", "alice-password-1"),
    "nora": ("north", "lead", "nora-password-1"),
    "sam": ("south", "agent", "sam-password-01"),
    "sue": ("south", "lead", "sue-password-01"),
    "mia": (None, "manager", "mia-password-01"),
    "locky": ("north", "agent", "locky-password-1"),
}

NORTH_OLD = ["N000001", "N000002", "N000003"]
NORTH_NEW = ["N000002", "N000004", "N000005", "N000006"]
SOUTH_OLD = ["S000001", "S000002"]
SOUTH_NEW = ["S000001", "S000003"]
NAMES = {
    "N000001": "王小明",
    "N000002": '=HYPERLINK("http://x","点我")',
    "N000004": "欧阳娜娜",
    "N000005": "+SUM(1,2)",
    "N000006": "Li Na",
}


def list_row(customer_id: str, rank: int, region: str) -> dict[str, object]:
    return {
        "rank": rank,
        "customer_id": customer_id,
        "full_name": NAMES.get(customer_id, f"客户 {customer_id}"),
        "phone": "+86 138 0013 8000" if rank % 2 else "13912345678",
        "region": region,
        "value_tier": "high" if rank == 1 else "mid",
        "rfm_segment": "at_risk",
        "churn_probability": 0.9 - rank / 100,
        "clv_365d": 3000 + rank,
        "value_at_risk": 1000.5 * rank,
        "reasons": ["no purchase for 60 days", "complaint open"],
        "recommended_action": "call with retention offer",
        "agent": f"{region}-desk",
    }


@dataclass
class PortalEnv:
    root: Path
    env: dict[str, str]
    old_date: date
    new_date: date
    lists: dict[tuple[str, date], TeamList] = field(default_factory=dict)

    @property
    def portal_dir(self) -> Path:
        return Path(self.env["CRM_PORTAL_DIR"])

    @property
    def exports_dir(self) -> Path:
        return Path(self.env["CRM_EXPORTS_DIR"])

    @property
    def inbox_dir(self) -> Path:
        return Path(self.env["CRM_INBOX"])

    @property
    def reference_dir(self) -> Path:
        return Path(self.env["CRM_REFERENCE_DIR"])

    @property
    def published_path(self) -> Path:
        return Path(self.env["CRM_DATA_DIR"]) / "warehouse" / "marts.duckdb"

    def list_id(self, team: str, which: str = "new") -> str:
        return self.lists[(team, self.new_date if which == "new" else self.old_date)].list_id

    def list_bytes(self, team: str, which: str = "new") -> bytes:
        day = self.new_date if which == "new" else self.old_date
        return (self.exports_dir / "target_lists" / day.isoformat() / f"{team}.csv").read_bytes()


def make_portal_env(root: Path) -> PortalEnv:
    env = {
        "CRM_DATA_DIR": str(root / "data"),
        "CRM_PORTAL_DIR": str(root / "portal"),
        "CRM_EXPORTS_DIR": str(root / "exports"),
        "CRM_INBOX": str(root / "inbox"),
        "CRM_REFERENCE_DIR": str(root / "reference"),
        **TEST_SCRYPT,
    }
    today = date.today()
    portal = PortalEnv(root=root, env=env, old_date=today - timedelta(days=3), new_date=today - timedelta(days=1))
    for day, north, south in ((portal.old_date, NORTH_OLD, SOUTH_OLD), (portal.new_date, NORTH_NEW, SOUTH_NEW)):
        manifest = write_target_lists(
            list_date=day,
            as_of_date=day - timedelta(days=1),
            teams={
                "north": [list_row(c, i, "north") for i, c in enumerate(north, start=1)],
                "south": [list_row(c, i, "south") for i, c in enumerate(south, start=1)],
                "east": [],
            },
            control_counts={"north": 2, "south": 1, "east": 0},
            eligible_counts={"north": 20, "south": 9, "east": 0},
            model_versions={"churn": "test-model"},
            exports_dir=portal.exports_dir,
            run_id="test",
        )
        for entry in manifest.teams:
            portal.lists[(entry.team, day)] = entry
    ensure_private_dir(portal.portal_dir)
    shutil.copyfile(users_db(root.parent), portal.portal_dir / DB_NAME)
    return portal


def users_db(base: Path) -> Path:
    """A portal database holding `USERS` (hashed at the test cost), made once per test session
    with the real `add_user`; the modules copy it."""
    template = base / "users-template"
    path = template / DB_NAME
    if not path.exists():
        with pytest.MonkeyPatch.context() as mp:
            for name, value in TEST_SCRYPT.items():
                mp.setenv(name, value)
            for username, (team, role, password) in USERS.items():
                add_user(template, username, team, role, password)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(portal: PortalEnv, *options: str, env_changes: Mapping[str, str | None] | None = None) -> LiveServer:
    """`crm-warehouse serve` on a free port, with extra command-line `options`; `env_changes` sets
    (or, with None, removes) environment variables of the server on top of `portal.env`."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(portal.env)
    for name, value in (env_changes or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    log_path = portal.root / f"serve-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagster_project.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *options,
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", "127.0.0.1", port, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`crm-warehouse serve` exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.terminate()
    pytest.fail(f"`crm-warehouse serve` did not answer within 60 s:\n{server.log()}")


def stop_server(server: LiveServer) -> None:
    """SIGTERM: uvicorn shuts down gracefully (the app's shutdown hook runs)."""
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=5)


# (server url, user name) -> cookies of a session opened by an earlier `sign_in`
_SESSIONS: dict[tuple[str, str], httpx.Cookies] = {}


@contextmanager
def sign_in(server: LiveServer, username: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in through POST /api/login, closed afterwards.

    Like a browser, it keeps the session between uses: a sign-in costs a deliberately slow scrypt
    hash, so a session that still answers GET /api/me is reused; an ended one means a new sign-in.
    """
    key = (server.url, username)
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as client:
        if key in _SESSIONS:
            client.cookies.update(_SESSIONS.pop(key))
            if client.get("/api/me").status_code != 200:
                client.cookies.clear()
        if not client.cookies:
            response = client.post("/api/login", json={"username": username, "password": USERS[username][2]})
            assert response.status_code == 200, response.text
        yield client
        _SESSIONS[key] = httpx.Cookies(client.cookies)


def raw_get(server: LiveServer, path: str, cookie: str | None) -> tuple[int, bytes]:
    """GET a path byte-for-byte as given (no client-side normalisation of ../ or %2e)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        if cookie:
            conn.putheader("Cookie", cookie)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def cookie_header(client: httpx.Client) -> str:
    return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


def login(
    server: LiveServer,
    username: str,
    password: str,
    *,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One POST /api/login sent from the local address `source` (any 127.x.y.z works on Linux).

    The session cookie of a successful sign-in is not kept: each call is a fresh visitor.
    """
    if source not in _CLIENTS:  # making an httpx client costs ~60 ms; one per address is reused
        _CLIENTS[source] = httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=60)
    response = _CLIENTS[source].post(
        f"{server.url}/api/login",
        json={"username": username, "password": password},
        headers=headers or {},
    )
    _CLIENTS[source].cookies.clear()
    return response


_CLIENTS: dict[str, httpx.Client] = {}


def send_chunked(
    server: LiveServer,
    path: str,
    total: int,
    *,
    cookie: str | None = None,
    content_type: str = "application/json",
    prefix: bytes = b"",
    chunk_size: int = 64 * 1024,
) -> tuple[int, int]:
    """POST `prefix` and then up to `total` bytes as a chunked body (no Content-Length), stopping
    as soon as the server answers. Returns (HTTP status, bytes of body sent)."""
    sock = socket.create_connection((server.host, server.port), timeout=30)
    try:
        head = [
            f"POST {path} HTTP/1.1",
            f"Host: {server.host}:{server.port}",
            "Transfer-Encoding: chunked",
            f"Content-Type: {content_type}",
        ]
        if cookie:
            head.append(f"Cookie: {cookie}")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        chunk = f"{chunk_size:x}\r\n".encode() + b"a" * chunk_size + b"\r\n"
        if prefix:
            sock.sendall(f"{len(prefix):x}\r\n".encode() + prefix + b"\r\n")
        sent = len(prefix)
        try:
            while sent < total:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered: stop sending
                sock.sendall(chunk)
                sent += chunk_size
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed; its answer is read below
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, sent
    finally:
        sock.close()
