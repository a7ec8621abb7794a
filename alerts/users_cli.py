"""``lifewatch users add|token|revoke|list``: the people who may use the alert API.

Handler: ``cli(args, settings)``; arguments (see :func:`configure_parser`):

* ``args.action``: ``add`` | ``token`` | ``revoke`` | ``list``
* ``args.name``: the user (add, token) or a user name / token id ``tk-...`` (revoke)
* ``args.role``: add: ``admin``, ``operator``, ``supervisor``, ``crew``, ``engineer``, ``read_only``
* ``args.unit``: add: the unit id (required for crew, e.g. ``shz-water``)
* ``args.json``: list: JSON output

``token`` prints a new token once (only its SHA-256 is stored).  Exit codes:
0 done, 1 not found / conflict / database error, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys

ACTIONS = ("add", "token", "revoke", "list")


def configure_parser(p: argparse.ArgumentParser) -> None:
    """The subcommand's arguments (argparse only, so ``lifewatch --help`` stays fast)."""
    p.add_argument("action", choices=ACTIONS, help="add a user, issue a token, revoke tokens, list users")
    p.add_argument("name", nargs="?", help="user name (add, token); user name or token id tk-... (revoke)")
    p.add_argument("--role", help="add: admin, operator, supervisor, crew, engineer or read_only")
    p.add_argument("--unit", help="add: the responsible unit (required for crew), e.g. shz-water")
    p.add_argument("--json", action="store_true", help="list: JSON")


def cli(args: argparse.Namespace, settings) -> int:  # noqa: ANN001 - lifewatch.settings.Settings
    from alerts.clock import system_clock
    from alerts.config import AlertSettings
    from alerts.db import open_store
    from alerts.errors import AlertError, Invalid
    from alerts.states import Role
    from alerts.types import Actor
    from alerts.users import add_user, issue_token, listing, revoke

    if args.action != "list" and not args.name:
        print(f"lifewatch users {args.action}: a NAME is needed", file=sys.stderr)
        return 2
    if args.action == "add" and not args.role:
        print("lifewatch users add: --role is needed", file=sys.stderr)
        return 2
    st = AlertSettings.from_settings(settings)
    actor = Actor("cli", Role.SYSTEM)
    try:
        store = open_store(st)
        now = system_clock()
        with store.write() as s:
            if args.action == "add":
                units = _units(st) if args.unit else []
                if args.unit and args.unit not in units:
                    raise Invalid(f"unknown unit {args.unit!r} (the city's units: {', '.join(units)})")
                user = add_user(s, args.name, args.role, args.unit, actor, now)
                print(f"added {user.name} ({user.role}{', unit ' + user.unit if user.unit else ''}); "
                      f"issue a token with: lifewatch users token {user.name}")
            elif args.action == "token":
                row, token = issue_token(s, args.name, actor, now)
                print(f"token {row.id} for {args.name} (shown once, store it now):", file=sys.stderr)
                print(token)
            elif args.action == "revoke":
                ids = revoke(s, args.name, actor, now)
                print(f"revoked {len(ids)} token(s): {' '.join(ids) or '-'}")
            else:
                users = listing(s)
                if args.json:
                    print(json.dumps(users, indent=2))
                else:
                    for u in users:
                        live = [t["id"] for t in u["tokens"] if not t["revoked_at"]]
                        print(f"{u['name']:24} {u['role']:10} {u['unit'] or '-':16} tokens: {' '.join(live) or '-'}")
        store.dispose()
    except AlertError as exc:  # not found, conflict, database error: 1; unusable arguments: 2
        print(f"lifewatch users {args.action}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, Invalid) else 1
    return 0


def _units(st) -> list[str]:  # noqa: ANN001
    from lifewatch.city import load_city

    city = load_city(st.city_file or None)
    return sorted({u.id for u in city.units.values()} | {u.id for u in city.district_units.values()})
