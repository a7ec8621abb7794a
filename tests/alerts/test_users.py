"""Users and tokens: only hashes are stored, revocation works, demo tokens only in demo mode; the CLI handler."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from alerts import users_cli
from alerts.errors import AuthError, DuplicateName, Invalid, NotFound
from alerts.models import AuditEvent, Token
from alerts.states import Role
from alerts.types import Actor
from alerts.users import add_user, authenticate, ensure_demo_users, hash_token, issue_token, listing, revoke
from lifewatch.settings import Settings

ADMIN = Actor("root", Role.ADMIN)


def everything_stored(store) -> str:  # noqa: ANN001
    """Every value of every table, as text."""
    out = []
    with store.read() as s:
        for table in inspect(s.get_bind()).get_table_names():
            out += [repr(tuple(row)) for row in s.execute(text(f'SELECT * FROM "{table}"'))]
    return "\n".join(out)


def test_tokens_are_stored_as_hashes_only(store, clock, db_url) -> None:  # noqa: ANN001
    with store.write() as s:
        add_user(s, "li.wei", Role.CREW, "shz-water", ADMIN, clock())
        row, token = issue_token(s, "li.wei", ADMIN, clock())
    assert token.startswith("lw_") and len(token) >= 40
    with store.read() as s:
        stored = s.get(Token, row.id)
        assert stored.hash == hashlib.sha256(token.encode()).hexdigest()
    dump = everything_stored(store)
    assert token not in dump and token[3:] not in dump and stored.hash in dump
    if db_url.startswith("sqlite"):  # not even in the raw database file or its write-ahead log
        base = Path(db_url.removeprefix("sqlite:///"))
        for f in (base, base.with_name(base.name + "-wal")):
            if f.exists():
                assert token.encode() not in f.read_bytes()
    with store.read() as s:
        assert authenticate(s, token, demo=False) == Actor("li.wei", Role.CREW, "shz-water")


def test_revoking_by_token_id_and_by_name(store, clock) -> None:  # noqa: ANN001
    with store.write() as s:
        add_user(s, "op", Role.OPERATOR, None, ADMIN, clock())
        t1, tok1 = issue_token(s, "op", ADMIN, clock())
        _, tok2 = issue_token(s, "op", ADMIN, clock())
        _, tok3 = issue_token(s, "op", ADMIN, clock())
    with store.write() as s:
        assert revoke(s, t1.id, ADMIN, clock()) == [t1.id]
    with store.read() as s:
        with pytest.raises(AuthError):
            authenticate(s, tok1, demo=False)
        assert authenticate(s, tok2, demo=False).name == "op"
    with store.write() as s:
        assert len(revoke(s, "op", ADMIN, clock())) == 2
        assert revoke(s, t1.id, ADMIN, clock()) == []  # already revoked
    with store.read() as s:
        for tok in (tok2, tok3, "lw_made_up", ""):
            with pytest.raises(AuthError):
                authenticate(s, tok, demo=False)
        kinds = s.scalars(select(AuditEvent.kind).order_by(AuditEvent.id)).all()
    assert kinds == ["user_added"] + ["token_issued"] * 3 + ["token_revoked"] * 3
    assert [t["revoked_at"] is not None for t in listing_of(store)["op"]["tokens"]] == [True, True, True]


def listing_of(store) -> dict:  # noqa: ANN001
    with store.read() as s:
        return {u["name"]: u for u in listing(s)}


def test_user_validation(store, clock) -> None:  # noqa: ANN001
    for name, role, unit in [
        ("Bad Name", Role.OPERATOR, None),
        ("tk-1234", Role.OPERATOR, None),  # looks like a token id
        ("crew1", Role.CREW, None),  # a crew needs a unit
        ("x", "janitor", None),
        ("x", Role.SYSTEM, None),
    ]:
        with pytest.raises(Invalid):
            with store.write() as s:
                add_user(s, name, role, unit, ADMIN, clock())
    assert listing_of(store) == {}


def test_duplicates_and_unknowns(store, clock) -> None:  # noqa: ANN001
    with store.write() as s:
        add_user(s, "a", Role.ADMIN, None, ADMIN, clock())
    with pytest.raises(DuplicateName):
        with store.write() as s:
            add_user(s, "a", Role.OPERATOR, None, ADMIN, clock())
    for call in (lambda s: issue_token(s, "ghost", ADMIN, clock()), lambda s: revoke(s, "ghost", ADMIN, clock()),
                 lambda s: revoke(s, "tk-00000000", ADMIN, clock())):
        with pytest.raises(NotFound):
            with store.write() as s:
                call(s)


def test_demo_users_work_in_demo_mode_only(store, clock) -> None:  # noqa: ANN001
    with store.write() as s:
        tokens = ensure_demo_users(s, ["shz-water", "shz-power"], clock())
    with store.write() as s:
        ensure_demo_users(s, ["shz-water", "shz-power"], clock())  # idempotent
    assert set(tokens) == {"demo-admin", "demo-operator", "demo-supervisor", "demo-engineer", "demo-read_only",
                           "demo-crew-shz-water", "demo-crew-shz-power"}
    with store.read() as s:
        assert authenticate(s, "demo-crew-shz-water", demo=True) == Actor("demo-crew-shz-water", Role.CREW, "shz-water")
        assert authenticate(s, "demo-admin", demo=True).role is Role.ADMIN
        with pytest.raises(AuthError, match="demo mode"):
            authenticate(s, "demo-admin", demo=False)
        assert hash_token("demo-admin") in s.scalars(select(Token.hash)).all()
    assert len(listing_of(store)["demo-admin"]["tokens"]) == 1


def _args(action: str, name: str | None = None, **kw) -> argparse.Namespace:  # noqa: ANN003
    p = argparse.ArgumentParser()
    users_cli.configure_parser(p)
    argv = [action] + ([name] if name else [])
    for k, v in kw.items():
        argv += [f"--{k}"] + ([] if v is True else [v])
    return p.parse_args(argv)


def test_cli_add_token_list_revoke(db_url, store, monkeypatch, capsys, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setenv("LIFEWATCH_ALERTS_DB_URL", db_url)
    settings = Settings(state_dir=tmp_path)
    assert users_cli.cli(_args("add", "wang.fang", role="crew", unit="shz-gas"), settings) == 0
    assert "added wang.fang (crew, unit shz-gas)" in capsys.readouterr().out
    assert users_cli.cli(_args("token", "wang.fang"), settings) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("lw_") and "shown once" in out.err
    with store.read() as s:
        assert authenticate(s, token, demo=False) == Actor("wang.fang", Role.CREW, "shz-gas")
    assert users_cli.cli(_args("list", json=True), settings) == 0
    (user,) = json.loads(capsys.readouterr().out)
    assert (user["name"], user["role"], user["unit"], len(user["tokens"])) == ("wang.fang", "crew", "shz-gas", 1)
    assert users_cli.cli(_args("revoke", user["tokens"][0]["id"]), settings) == 0
    assert "revoked 1 token" in capsys.readouterr().out
    with store.read() as s:
        with pytest.raises(AuthError):
            authenticate(s, token, demo=False)
    assert users_cli.cli(_args("list"), settings) == 0
    assert "wang.fang" in capsys.readouterr().out
    assert hash_token(token) in everything_stored(store) and token not in everything_stored(store)


CLI_REFUSALS = [
    (("add", "x"), 2),  # no role
    (("token",), 2),  # no name
    (("add", "x", {"role": "crew"}), 2),  # crew without unit
    (("add", "x", {"role": "crew", "unit": "no-such-unit"}), 2),
    (("add", "x", {"role": "wizard"}), 2),
    (("token", "nobody"), 1),
    (("revoke", "tk-deadbeef"), 1),
]


def test_cli_refusals(db_url, store, monkeypatch, tmp_path, capsys) -> None:  # noqa: ANN001
    monkeypatch.setenv("LIFEWATCH_ALERTS_DB_URL", db_url)
    for args, code in CLI_REFUSALS:
        action, *rest = args
        name = rest[0] if rest and isinstance(rest[0], str) else None
        opts = rest[-1] if rest and isinstance(rest[-1], dict) else {}
        assert users_cli.cli(_args(action, name, **opts), Settings(state_dir=tmp_path)) == code, args
        assert capsys.readouterr().err.startswith("lifewatch users"), args
    assert listing_of(store) == {}
