"""Cost of authenticating a request (issue 16): token and session lookups, and the audit line.

In process, on SQLite and PostgreSQL, in one transaction per call as the hot task routes do:

Each call's transaction also makes one small write, as every hot call (a reservation, a
judgment) does, so the figures are what authentication adds to such a call.

- baseline: the pre-scope lookup (``collect.get_user_by_token_hash``, the user by token hash);
- token read: ``Caller.user`` for a GET (user + token in one indexed query, scope check);
- token write: ``Caller.user(write=True)`` for a POST (the same, plus the audit line);
- session: ``Caller.user`` with a session cookie's hash (user + session in one query).

Prints microseconds of CPU per call (process time) and the ratio to the baseline, measured
interleaved in the same run. Usage: ``python bench/auth_bench.py [--calls 2000]``.
Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable

from sqlalchemy import bindparam, update

from preflab import collect
from preflab.collect import accounts as store
from preflab.collect.core_tables import USERS
from preflab.server.auth import hash_token
from preflab.server.db import Database
from preflab.server.deps import Caller
from preflab.server.scopes import WORK

_WORK = update(USERS).where(USERS.c.user_id == "human:bench").values(team=bindparam("b_team"))


def _setup(url: str) -> tuple[Database, str, str]:
    db = Database(url)
    with db.transaction() as conn:
        if collect.get_user_by_username(conn, "bench") is None:
            collect.create_user(conn, "bench", "x")
        collect.create_api_token(conn, "human:bench", "bench", hash_token("pfl_bench_token"))
        store.create_session(conn, "human:bench", hash_token("bench-session-secret"))
    return db, hash_token("pfl_bench_token"), hash_token("bench-session-secret")


def _cpu_per_call(db: Database, fn: Callable[[object], object], calls: int) -> float:
    start = time.process_time()
    for i in range(calls):
        with db.transaction() as conn:
            # every hot call writes anyway (a reservation, a judgment): the figures are the
            # authentication's share on top of such a transaction
            conn.execute(_WORK, {"b_team": f"t{i}"})
            fn(conn)
    return (time.process_time() - start) / calls * 1e6


def run(url: str, calls: int) -> None:
    db, token_hash, session_hash = _setup(url)
    read = Caller(token_hash=token_hash, method="GET", action="GET /bench", scopes=WORK)
    write = Caller(token_hash=token_hash, method="POST", action="POST /bench", scopes=WORK,
                   path_params={"assignment_id": "a1"})
    session = Caller(session_hash=session_hash, method="POST", action="POST /bench",
                     scopes=WORK)
    cases: dict[str, Callable[[object], object]] = {
        "baseline (user by token hash)": lambda c: collect.get_user_by_token_hash(c, token_hash),
        "token, GET (scopes checked)": lambda c: read.user(c, write=True),  # type: ignore[arg-type]
        "token, POST (+ audit line)": lambda c: write.user(c, write=True),  # type: ignore[arg-type]
        "session cookie": lambda c: session.user(c, write=True),  # type: ignore[arg-type]
    }
    totals = dict.fromkeys(cases, 0.0)
    rounds = 4
    for _ in range(rounds):  # interleaved, so load from elsewhere hits every case alike
        for name, fn in cases.items():
            totals[name] += _cpu_per_call(db, fn, calls // rounds)
    base = totals["baseline (user by token hash)"] / rounds
    print(f"[{url.split(':')[0]}] load average {os.getloadavg()[0]:.1f}")
    for name, total in totals.items():
        us = total / rounds
        print(f"  {name:32s} {us:7.1f} µs CPU per call (one transaction)  {us / base:4.2f}x")
    db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                run(f"sqlite:///{tmp}/auth.sqlite", args.calls)
            else:
                import psycopg

                pg = os.environ.get("PREFLAB_TEST_PG_URL",
                                    "postgresql+psycopg://postgres@127.0.0.1:5432/test")
                dbname = f"preflab_auth_bench_{uuid.uuid4().hex[:8]}"
                admin = pg.replace("postgresql+psycopg://", "postgresql://")
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{dbname}"')
                try:
                    run(pg.rsplit("/", 1)[0] + "/" + dbname, args.calls)
                finally:
                    with psycopg.connect(admin, autocommit=True) as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

if __name__ == "__main__":
    main()
