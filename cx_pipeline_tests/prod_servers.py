"""Real production components on 127.0.0.1 for the production-path test: a throwaway PostgreSQL cluster, an S3 API
(moto's server) and a ``dagster-daemon`` process.

PostgreSQL comes from the OS packages (``.ci/run`` installs ``postgresql`` when it is missing); ``initdb`` refuses
to run as root, so as root the cluster is created and started as the unprivileged ``nobody`` user.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG_BIN_DIRS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14")]
UNPRIVILEGED_USER = "nobody"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    """The folder holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    for d in PG_BIN_DIRS:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    db: str

    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_DB": self.db,
                "DAGSTER_PG_USERNAME": self.user, "DAGSTER_PG_PASSWORD": "unused-trust-auth"}


def _as_cluster_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", UNPRIVILEGED_USER, "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres_cluster(bin_dir: Path) -> Iterator[Postgres]:
    """initdb + pg_ctl start on a free port in a fresh folder (trust auth on 127.0.0.1 only); removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="cx-pg-"))  # not under pytest's 0700 tmp: the cluster owner must reach it
    if os.geteuid() == 0:
        shutil.chown(folder, UNPRIVILEGED_USER)
    data = folder / "data"
    port = free_port()
    run = dict(check=True, capture_output=True, text=True, timeout=120)
    try:
        subprocess.run(_as_cluster_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                          "--locale=C", "-E", "UTF8"]), **run)
        subprocess.run(_as_cluster_owner([
            str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "postgres.log"), "-w", "-t", "60",
            "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
            "start"]), **run)
    except subprocess.CalledProcessError as exc:
        log = folder / "postgres.log"
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr or exc.stdout}"
                           f"{log.read_text() if log.exists() else ''}") from exc
    try:
        yield Postgres("127.0.0.1", port, "postgres", "postgres")
    finally:
        subprocess.run(_as_cluster_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class S3:
    endpoint_url: str
    bucket: str

    def env(self) -> dict[str, str]:
        """Dummy credentials and the endpoint for every S3 client in every process (s3fs/botocore and polars)."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                "AWS_ALLOW_HTTP": "true", "AWS_EC2_METADATA_DISABLED": "true"}


@contextmanager
def s3_server(bucket: str = "cx-data") -> Iterator[S3]:
    """moto's ThreadedMotoServer: a real HTTP server speaking the S3 API, with one empty bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _forget_s3_clients()
    try:
        s3 = S3(f"http://127.0.0.1:{port}", bucket)
        env = s3.env()
        boto3.client("s3", endpoint_url=s3.endpoint_url, region_name=env["AWS_REGION"],
                     aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket=bucket)
        yield s3
    finally:
        server.stop()
        _forget_s3_clients()


def _forget_s3_clients() -> None:
    """fsspec keeps one S3 filesystem per set of arguments for the process: drop those bound to an old endpoint."""
    import fsspec

    fsspec.get_filesystem_class("s3").clear_instance_cache()


@contextmanager
def dagster_daemon(env: Mapping[str, str], workdir: Path, log: Path) -> Iterator[subprocess.Popen]:
    """``dagster-daemon run`` on the project's code location, as a deployment runs it; stopped afterwards."""
    exe = Path(sys.executable).with_name("dagster-daemon")
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(exe), "run", "-m", "cx_pipeline.definitions"], cwd=workdir, env=dict(env),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)  # its own session: the code server and run workers it started go too
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait(timeout=10)


def wait_for(what: str, probe, timeout: float, *, every: float = 1.0, on_timeout=None):
    """Poll ``probe`` until it returns something truthy; fail with ``what`` (and ``on_timeout()``) after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = on_timeout() if on_timeout else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{extra}")
        time.sleep(every)
