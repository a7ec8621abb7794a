"""Every alert test runs twice: on SQLite (a file in tmp_path) and on PostgreSQL.

SQLite: a file migrated once per session and copied for each test.

PostgreSQL: ``LIFEWATCH_TEST_POSTGRES_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``).  Each test gets its own
schema ``lw_t_<hex>`` (``search_path`` set on every connection), migrated with
the real Alembic migrations and dropped afterwards (in a background thread,
so the drop overlaps the next test; the session waits for all); nothing else in that
database is touched.  If the server cannot be reached the tests FAIL, they
do not skip.

Fixtures: ``db_url``, ``engine`` (migrated), ``store``, ``clock`` (a
:class:`~alerts.clock.FakeClock`), ``settings`` (:class:`AlertSettings`),
``city`` (Shihezi), ``intake``, ``users`` (one user per role plus crews of
two units; name -> token), ``client`` (FastAPI TestClient) and ``det()``, a
detection builder with event times in seconds after :data:`T0`.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from alerts.clock import FakeClock
from alerts.config import AlertSettings
from alerts.db import Store, make_engine, migrate
from alerts.intake import AlertIntake
from alerts.states import Role
from alerts.types import Actor
from alerts.users import add_user, issue_token
from lifewatch.city import City, load_city
from tests.alerts.helpers import UNIT_A, UNIT_B, WALL0

with warnings.catch_warnings():  # starlette 1.x asks for httpx2; the project's httpx works
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

PG_DSN = os.environ.get("LIFEWATCH_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN = Actor("test-admin", Role.ADMIN)


def _pg_url(dsn: str):  # noqa: ANN202
    return make_url(dsn).set(drivername="postgresql+psycopg")


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    engine = create_engine(_pg_url(PG_DSN), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the same message
        pytest.fail(
            f"PostgreSQL is needed for the alert tests and is unreachable at {PG_DSN} ({exc.__class__.__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); start it or set LIFEWATCH_TEST_POSTGRES_DSN",
            pytrace=False,
        )
    dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-schema")  # drops overlap the next test
    engine.dropper = dropper  # type: ignore[attr-defined]
    yield engine
    dropper.shutdown(wait=True)
    engine.dispose()


def _drop_schema(admin: Engine, schema: str) -> None:
    with admin.connect() as c:
        c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (the copy is what the test migrates again: a no-op)."""
    path = tmp_path_factory.mktemp("alerts-template") / "alerts.sqlite"
    e = make_engine(f"sqlite:///{path}")
    migrate(e)
    e.dispose()  # the last connection closing checkpoints the WAL into the file
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "alerts.sqlite"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    admin = request.getfixturevalue("pg_admin")
    schema = f"lw_t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_url(PG_DSN).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        admin.dropper.submit(_drop_schema, admin, schema)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    e = make_engine(db_url)
    migrate(e)
    yield e
    e.dispose()


@pytest.fixture
def store(engine: Engine) -> Store:
    return Store(engine)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(WALL0)


@pytest.fixture
def settings(db_url: str) -> AlertSettings:
    return AlertSettings(db_url=db_url, auto_migrate=False)


@pytest.fixture(scope="session")
def city() -> City:
    return load_city()


@pytest.fixture
def intake(store: Store, city: City, settings: AlertSettings, clock: FakeClock) -> AlertIntake:
    return AlertIntake(store, city, settings, clock)


@pytest.fixture
def users(store: Store, clock: FakeClock) -> dict[str, str]:
    """name -> token: admin, operator, supervisor, engineer, read_only, crew_a (shz-water), crew_b (shz-power)."""
    spec = {
        "admin": (Role.ADMIN, None),
        "operator": (Role.OPERATOR, None),
        "supervisor": (Role.SUPERVISOR, None),
        "engineer": (Role.ENGINEER, None),
        "read_only": (Role.READ_ONLY, None),
        "crew_a": (Role.CREW, UNIT_A),
        "crew_b": (Role.CREW, UNIT_B),
    }
    tokens = {}
    with store.write() as s:
        for name, (role, unit) in spec.items():
            add_user(s, name.replace("_", "-"), role, unit, ADMIN, clock())
            tokens[name] = issue_token(s, name.replace("_", "-"), ADMIN, clock())[1]
    return tokens


@pytest.fixture
def app(settings: AlertSettings, clock: FakeClock, engine: Engine):  # noqa: ANN201
    from alerts.api import create_app

    return create_app(settings, clock=clock, engine=engine)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # noqa: ANN001
    with TestClient(app) as c:
        yield c
