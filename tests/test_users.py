"""Users, roles and sessions in the store, and the `assay users` commands, on both engines."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import Engine, update

from assay.errors import UserError
from assay.store import users as user_store
from assay.store.engine import make_engine
from assay.store.tables import user_sessions

HOUR_NS = 3600 * 10**9


def test_create_authenticate_and_roles(engine: Engine) -> None:
    with engine.begin() as conn:
        assert not user_store.users_exist(conn)
        ada = user_store.create_user(conn, "ada", "correct horse battery", is_admin=True)
        bob = user_store.create_user(conn, "bob@example.com", "tr0ub4dor&3")
        user_store.grant(conn, bob, "alpha", "viewer")
        user_store.grant(conn, bob, "alpha", "annotator")  # replaces, not duplicates
        user_store.grant(conn, bob, "beta", "editor")
        user_store.revoke(conn, bob, "beta")
        user_store.revoke(conn, bob, "never-existed")
    with engine.begin() as conn:
        assert user_store.users_exist(conn)
        found = user_store.get_by_name(conn, "ada")
        assert found is not None and found["id"] == ada and found["is_admin"] is True
        assert "password_hash" not in found
        assert user_store.get_by_name(conn, "nobody") is None
        assert user_store.roles_of(conn, bob) == {"alpha": "annotator"}
        assert user_store.project_names(conn) == ["alpha", "beta"]
        listed = {u["name"]: u for u in user_store.list_users(conn)}
        assert listed["bob@example.com"]["roles"] == {"alpha": "annotator"}
        signed = user_store.authenticate(conn, "bob@example.com", "tr0ub4dor&3")
        assert signed is not None and signed["id"] == bob and "password_hash" not in signed
        assert user_store.authenticate(conn, "bob@example.com", "tr0ub4dor&4") is None
        assert user_store.authenticate(conn, "nobody", "tr0ub4dor&3") is None
        user_store.disable(conn, bob)
        assert user_store.authenticate(conn, "bob@example.com", "tr0ub4dor&3") is None


def test_names_passwords_and_roles_are_checked(engine: Engine) -> None:
    with engine.begin() as conn:
        user_store.create_user(conn, "Carol", "a sturdy passphrase")
    bad = [
        ("carol", "another passphrase", "already exists"),  # case-insensitive
        ("dan", "", "empty"),
        ("dan", "short", "too short"),
        ("dan", "password123", "too easy"),
        ("dan", "aaaaaaaaaaaa", "too easy"),
        ("dan", "dan-is-the-best", "user name"),
        ("<script>", "a sturdy passphrase", "not valid"),
        ("//evil", "a sturdy passphrase", "not valid"),
    ]
    for name, password, message in bad:
        with engine.begin() as conn, pytest.raises(UserError, match=message):
            user_store.create_user(conn, name, password)
    with engine.begin() as conn:
        carol = user_store.get_by_name(conn, "Carol")
        assert carol is not None
        with pytest.raises(UserError, match="role must be one of"):
            user_store.grant(conn, carol["id"], "alpha", "owner")
        user_store.set_password(conn, carol["id"], "a newer passphrase")
        assert user_store.verify_password(conn, carol["id"], "a newer passphrase")
        assert not user_store.verify_password(conn, carol["id"], "a sturdy passphrase")


def test_sessions_expire_rotate_and_end(engine: Engine) -> None:
    with engine.begin() as conn:
        eve = user_store.create_user(conn, "eve", "a sturdy passphrase")
        token, csrf = user_store.start_session(conn, eve, max_age_ns=24 * HOUR_NS)
        other, _ = user_store.start_session(conn, eve, max_age_ns=24 * HOUR_NS)
        short, _ = user_store.start_session(conn, eve, max_age_ns=1)
    time.sleep(0.01)
    with engine.begin() as conn:
        found = user_store.find_session(conn, token, idle_ns=HOUR_NS)
        assert found is not None and found["name"] == "eve" and found["csrf_token"] == csrf
        assert user_store.find_session(conn, "forged", idle_ns=HOUR_NS) is None
        assert user_store.find_session(conn, short, idle_ns=HOUR_NS) is None  # absolute expiry
        # Idle too long: last seen two hours ago.
        conn.execute(
            update(user_sessions)
            .where(user_sessions.c.token_hash == user_store.hash_token(other))
            .values(last_seen_ns=user_sessions.c.last_seen_ns - 2 * HOUR_NS)
        )
        assert user_store.find_session(conn, other, idle_ns=HOUR_NS) is None
        user_store.touch_session(conn, user_store.hash_token(other))
        assert user_store.find_session(conn, other, idle_ns=HOUR_NS) is not None

        user_store.set_flash(conn, token, "assay_secret_key")
        stored = conn.execute(user_sessions.select()).mappings().all()
        assert all("assay_secret_key" not in (row["flash"] or "") for row in stored)
        assert all(token not in row["token_hash"] for row in stored)
        assert user_store.pop_flash(conn, other) is None
        assert user_store.pop_flash(conn, token) == "assay_secret_key"
        assert user_store.pop_flash(conn, token) is None  # shown once

        user_store.end_sessions(conn, eve, keep_token=token)
        assert user_store.find_session(conn, other, idle_ns=HOUR_NS) is None
        assert user_store.find_session(conn, token, idle_ns=HOUR_NS) is not None
        user_store.end_session(conn, token)
        assert user_store.find_session(conn, token, idle_ns=HOUR_NS) is None


def _cli(*args: str, db_url: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assay.cli", "users", *args, "--db", db_url],
        env={**os.environ, "COLUMNS": "200"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_users_command_line(db_url: str) -> None:
    created = _cli(
        "create", "root", "--admin", "--password-stdin", db_url=db_url, stdin="s3cret-pass\n"
    )
    assert created.returncode == 0, created.stderr
    assert "Created administrator 'root'" in created.stdout
    assert "open local mode has ended" in created.stdout

    weak = _cli("create", "kim", "--password-stdin", db_url=db_url, stdin="kim\n")
    assert weak.returncode == 1, weak.stderr
    assert "too short" in weak.stderr and "Traceback" not in weak.stderr, weak.stderr
    # Without a terminal and without --password-stdin there is nobody to ask.
    no_tty = _cli("create", "kim", db_url=db_url)
    assert no_tty.returncode == 1 and "--password-stdin" in no_tty.stderr, no_tty.stderr

    assert (
        _cli(
            "create", "kim", "--password-stdin", db_url=db_url, stdin="quiet river 42\n"
        ).returncode
        == 0
    )
    granted = _cli("grant", "kim", "shop", "annotator", db_url=db_url)
    assert granted.returncode == 0 and "kim is now annotator in shop" in granted.stdout
    assert _cli("grant", "kim", "shop", "owner", db_url=db_url).returncode == 1
    assert "no user named" in _cli("grant", "nobody", "shop", "viewer", db_url=db_url).stderr

    listed = _cli("list", db_url=db_url)
    assert "shop: annotator" in listed.stdout and "(every project)" in listed.stdout

    assert _cli("revoke", "kim", "shop", db_url=db_url).returncode == 0
    again = _cli("revoke", "kim", "shop", db_url=db_url)
    assert again.returncode == 1 and "no role in 'shop'" in again.stderr, again.stderr

    assert _cli("disable", "kim", db_url=db_url).returncode == 0
    engine = make_engine(db_url)
    with engine.connect() as conn:
        kim = user_store.get_by_name(conn, "kim")
        assert kim is not None and kim["disabled_ns"] is not None
        assert user_store.authenticate(conn, "root", "s3cret-pass") is not None
    engine.dispose()
