"""Users and API tokens.

A token is ``lw_`` + 43 URL-safe characters (256 random bits).  The database
keeps only its SHA-256 (a token is random, so a plain hash is enough: there
is nothing to guess, unlike a password) and a public handle ``tk-xxxxxxxx``
that names it in lists and audit rows.  The token itself is shown once, when
it is issued.

Demo mode only (``LIFEWATCH_DEMO=1``): :func:`ensure_demo_users` creates one
user per role, plus one crew per unit of the city, whose token is its own
name (``demo-admin``, ``demo-operator``, ``demo-supervisor``,
``demo-engineer``, ``demo-read_only``, ``demo-crew-<unit>``, e.g.
``demo-crew-shz-water``).  Outside demo mode no user exists until
``lifewatch users add``, and tokens of ``demo-`` users are refused even if a
demo database is reused.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.errors import AuthError, DuplicateName, Invalid, NotFound
from alerts.journal import iso, record
from alerts.models import Token, User
from alerts.states import USER_ROLES, Role
from alerts.types import Actor

TOKEN_PREFIX = "lw_"
DEMO_PREFIX = "demo-"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def add_user(s: Session, name: str, role: Role | str, unit: str | None, actor: Actor, now: datetime) -> User:
    try:
        role = Role(role)
    except ValueError:
        raise Invalid(f"unknown role {role!r}: one of {', '.join(USER_ROLES)}") from None
    if role is Role.SYSTEM:
        raise Invalid("'system' is not a user role")
    if not NAME_RE.match(name) or name.startswith("tk-"):
        raise Invalid("a user name is 1-64 of a-z 0-9 . _ - (starting with a letter or digit, not 'tk-')")
    if role is Role.CREW and not unit:
        raise Invalid("a crew user needs --unit (the unit whose alerts it works)")
    if s.scalar(select(User.id).where(User.name == name)) is not None:
        raise DuplicateName(f"user {name} exists")
    user = User(name=name, role=role.value, unit=unit or None, created_at=now)
    s.add(user)
    s.flush()
    record(s, "user_added", now, actor, data={"user": name, "user_role": role.value, "user_unit": unit})
    return user


def issue_token(s: Session, name: str, actor: Actor, now: datetime, *, token: str | None = None) -> tuple[Token, str]:
    """A new token for ``name``: (its row, the token text, to be shown once)."""
    user = _user(s, name)
    text = token or new_token()
    row = Token(id="tk-" + secrets.token_hex(4), user_id=user.id, hash=hash_token(text), created_at=now)
    s.add(row)
    s.flush()
    record(s, "token_issued", now, actor, data={"user": name, "token_id": row.id})
    return row, text


def revoke(s: Session, name_or_token_id: str, actor: Actor, now: datetime) -> list[str]:
    """Revoke one token (by its ``tk-`` id) or every token of a user; the ids revoked."""
    if name_or_token_id.startswith("tk-"):
        tok = s.get(Token, name_or_token_id)
        if tok is None:
            raise NotFound(f"no token {name_or_token_id}")
        tokens = [tok] if tok.revoked_at is None else []
    else:
        user = _user(s, name_or_token_id)
        tokens = list(s.scalars(select(Token).where(Token.user_id == user.id, Token.revoked_at.is_(None))))
    for tok in tokens:
        tok.revoked_at = now
        record(s, "token_revoked", now, actor, data={"token_id": tok.id, "target": name_or_token_id})
    return [t.id for t in tokens]


def listing(s: Session) -> list[dict[str, Any]]:
    out = []
    for user in s.scalars(select(User).order_by(User.name)):
        tokens = s.scalars(select(Token).where(Token.user_id == user.id).order_by(Token.created_at, Token.id))
        out.append(
            {
                "name": user.name,
                "role": user.role,
                "unit": user.unit,
                "created_at": iso(user.created_at),
                "tokens": [{"id": t.id, "created_at": iso(t.created_at), "revoked_at": iso(t.revoked_at)} for t in tokens],
            }
        )
    return out


def authenticate(s: Session, token: str, *, demo: bool) -> Actor:
    if not token:
        raise AuthError("missing token")
    row = s.execute(
        select(User.name, User.role, User.unit)
        .join(Token, Token.user_id == User.id)
        .where(Token.hash == hash_token(token), Token.revoked_at.is_(None))
    ).first()
    if row is None:
        raise AuthError("unknown or revoked token")
    name, role, unit = row
    if name.startswith(DEMO_PREFIX) and not demo:
        raise AuthError("demo tokens work in demo mode only")
    return Actor(name, Role(role), unit)


def ensure_demo_users(s: Session, units: list[str], now: datetime) -> dict[str, str]:
    """Demo mode: one user per role and one crew per unit, each with its documented token; name -> token."""
    wanted: dict[str, tuple[Role, str | None]] = {
        f"{DEMO_PREFIX}{r.value}": (r, None) for r in USER_ROLES if r is not Role.CREW
    }
    wanted.update({f"{DEMO_PREFIX}crew-{u}": (Role.CREW, u) for u in units})
    system = Actor("demo-setup", Role.SYSTEM)
    for name, (role, unit) in wanted.items():
        if s.scalar(select(User.id).where(User.name == name)) is None:
            add_user(s, name, role, unit, system, now)
        if s.scalar(select(Token.id).where(Token.hash == hash_token(name))) is None:
            issue_token(s, name, system, now, token=name)
    return {name: name for name in wanted}


def _user(s: Session, name: str) -> User:
    user = s.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user {name}")
    return user
