"""Two real deployments for the regions' tests: each its own server process, database and
Redis, configured as docs/regions.md says (CHATTONIC_REGION, CHATTONIC_REGIONS, the shared
CHATTONIC_REGIONS_SECRET).

The databases follow this test run's: two SQLite files, or two PostgreSQL databases of their
own names (``regions_us``, ``regions_eu``) on the run's server, created and dropped here. The
Redis databases: /14 and /15 of the run's REDIS_URL (flushed before and after), or one
embedded Redis each."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

from chattonic.core import embedded
from tests.processes import ROOT, Process, free_port, http_status, python, uvicorn, wait_for

SECRET = "regions-test-shared-secret"
REDIS_DBS = {"us-central": 14, "eu-frankfurt": 15}


class Database:
    """A deployment's database, read by the test with plain SQL."""

    def __init__(self, name: str, directory: Path):
        self.postgres = connection.vendor == "postgresql"
        db = connection.settings_dict
        if self.postgres:
            self.name = f"regions_{name}"
            self.server = {
                "host": db["HOST"] or "127.0.0.1",
                "port": db["PORT"] or 5432,
                "user": db["USER"] or "postgres",
            }
            self.url = (
                f"postgres://{self.server['user']}@{self.server['host']}:{self.server['port']}"
                f"/{self.name}"
            )
        else:
            self.path = directory / f"{name}.sqlite3"
            self.url = f"sqlite:///{self.path}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(dbname="postgres", autocommit=True, **self.server) as admin:
            admin.execute(sql)

    def create(self) -> None:
        if self.postgres:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        if self.postgres:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.postgres:
            import psycopg

            with psycopg.connect(dbname=self.name, **self.server) as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()
        with sqlite3.connect(self.path) as conn:
            return conn.execute(sql, params).fetchall()

    def count(self, table: str, where: str = "", params: tuple = ()) -> int:
        sql = f'SELECT COUNT(*) FROM "{table}"' + (f" WHERE {where}" if where else "")  # noqa: S608
        return self.rows(sql, params)[0][0]

    def counts(self) -> dict[str, int]:
        """Every table's number of rows."""
        if self.postgres:
            tables = [
                r[0]
                for r in self.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ]
        else:
            tables = [
                r[0]
                for r in self.rows("SELECT name FROM sqlite_master WHERE type = 'table'")
                if not r[0].startswith("sqlite_")
            ]
        return {table: self.count(table) for table in sorted(tables)}


@dataclass
class Deployment:
    region: str
    port: int
    database: Database
    var_dir: Path
    redis_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    server: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> str:
        """``manage.py <args>`` in this deployment's settings; its standard output."""
        done = subprocess.run(
            python("manage.py", *args), cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stdout}{done.stderr}"
        return done.stdout

    def shell(self, code: str) -> dict:
        """Run ``code`` in this deployment's Django shell; the last line it printed, as JSON."""
        return json.loads(self.manage("shell", "-c", code).strip().splitlines()[-1])


def _redis_url(region: str) -> str:
    parts = urlsplit(settings.REDIS_URL)
    return urlunsplit(parts._replace(path=f"/{REDIS_DBS[region]}"))


def _flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


@contextmanager
def two_deployments(log_dir: Path):
    """US Central and EU Frankfurt, migrated and serving; stopped and removed afterwards."""
    ports = {"us-central": free_port(), "eu-frankfurt": free_port()}
    regions = {region: f"http://127.0.0.1:{port}" for region, port in ports.items()}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="rg") as short:
        deployments = {}
        for region, port in ports.items():
            code = region[:2]
            var_dir = Path(short) / code  # short: the embedded Redis is a unix socket there
            var_dir.mkdir()
            deployment = Deployment(region, port, Database(code, var_dir), var_dir)
            deployment.database.create()
            stack.callback(deployment.database.drop)
            env = {
                k: v
                for k, v in os.environ.items()
                if k not in ("REDIS_URL", "DATABASE_URL", "PUBLIC_BASE_URL")
            }
            env.update(
                DEBUG="1",
                PYTHONUNBUFFERED="1",
                CHATTONIC_REGION=region,
                CHATTONIC_REGIONS=json.dumps(regions),
                CHATTONIC_REGIONS_SECRET=SECRET,
                CHATTONIC_VAR_DIR=str(var_dir),
                DATABASE_URL=deployment.database.url,
                CHANNEL_CACHE_SECONDS="0",
            )
            if settings.REDIS_URL:
                deployment.redis_url = env["REDIS_URL"] = _redis_url(region)
                _flush(deployment.redis_url)
                stack.callback(_flush, deployment.redis_url)
            else:
                redis_process = embedded.start(var_dir / "redis.sock")
                if redis_process is not None:
                    stack.callback(redis_process.terminate)
            deployment.env = env
            deployments[region] = deployment
        migrations = [
            subprocess.Popen(python("manage.py", "migrate", "--noinput"), cwd=ROOT, env=d.env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for d in deployments.values()
        ]  # fmt: skip
        for migration in migrations:
            output, _ = migration.communicate()
            assert migration.returncode == 0, output.decode(errors="replace")
        for deployment in deployments.values():
            deployment.server = stack.enter_context(
                Process(
                    uvicorn(deployment.port),
                    deployment.env,
                    log_dir / f"{deployment.region}.log",
                )
            )
        for deployment in deployments.values():
            wait_for(
                lambda d=deployment: http_status(d.url + "/healthz") == 200,
                what=f"{deployment.region} to serve",
            )
        yield deployments
