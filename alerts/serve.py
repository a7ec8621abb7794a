"""``lifewatch api``: the alert queue's HTTP API under uvicorn, with the escalation tick.

Handler: ``cli(args, settings)``; arguments (see :func:`configure_parser`):
``args.host`` and ``args.port`` (None: ``LIFEWATCH_API_HOST`` /
``LIFEWATCH_API_PORT``, default 127.0.0.1:18080).  The database is migrated
first (``alembic upgrade head``).  Docs at ``/docs``, OpenAPI at ``/openapi.json``.
"""

from __future__ import annotations

import argparse
import sys


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="listen address (default LIFEWATCH_API_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default LIFEWATCH_API_PORT, 18080)")


def cli(args: argparse.Namespace, settings) -> int:  # noqa: ANN001 - lifewatch.settings.Settings
    import logging

    import uvicorn

    from alerts.api import create_app
    from alerts.config import AlertSettings
    from alerts.db import make_engine, migrate
    from alerts.errors import StoreError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    st = AlertSettings.from_settings(settings)
    host = getattr(args, "host", None) or st.api_host
    port = getattr(args, "port", None) or st.api_port
    engine = make_engine(st.db_url)
    try:
        migrate(engine)
        app = create_app(st, engine=engine, background=True)
    except StoreError as exc:
        print(f"lifewatch api: {exc}", file=sys.stderr)
        return 1
    if st.demo:
        print("demo mode: tokens demo-admin, demo-operator, demo-supervisor, demo-engineer, demo-read_only, "
              "demo-crew-<unit> (e.g. demo-crew-shz-water)", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="info")
    return 0
