"""vap-usage's traffic totals (services/usage/migrations/002_agent_totals.sql, counted per
statement since 003_count_per_statement.sql): the triggers must keep usage.agent_totals
equal to what aggregating every access and session gives, whatever is written: batches
of accesses with repeated, new and missing codes, several agents, and events applied a
second time (skipped by ON CONFLICT, as sync.c does), single accesses, sessions started
and then ended (the worker's upsert), rows deleted one by one or in bulk, tables
truncated, and rows that were there before the migrations ran."""
import os
import random

import pytest

from stack import REPO, PgCluster

MIGRATIONS = os.path.join(REPO, "services", "usage", "migrations")
AGENTS = ("hospital", "realestate", "dentist")

# What the traffic page used to compute from scratch: the reference.
AGGREGATE = """
SELECT t.agent_type, count(a.id), count(DISTINCT a.otp_id),
  (SELECT count(*) FROM usage.sessions s WHERE s.agent_type = t.agent_type),
  (SELECT coalesce(sum(duration_seconds), 0)::numeric(12,3) FROM usage.sessions s
   WHERE s.agent_type = t.agent_type),
  coalesce((extract(epoch FROM max(a.accessed_at)) * 1000)::int8, 0)
FROM unnest(ARRAY['hospital','realestate','dentist']) AS t(agent_type)
LEFT JOIN usage.accesses a ON a.agent_type = t.agent_type
GROUP BY t.agent_type ORDER BY t.agent_type"""
TOTALS = """
SELECT t.agent_type, coalesce(x.accesses, 0), coalesce(x.users, 0), coalesce(x.sessions, 0),
  coalesce(x.session_seconds, 0)::numeric(12,3),
  coalesce((extract(epoch FROM x.last_accessed_at) * 1000)::int8, 0)
FROM unnest(ARRAY['hospital','realestate','dentist']) AS t(agent_type)
LEFT JOIN usage.agent_totals x ON x.agent_type = t.agent_type ORDER BY t.agent_type"""


def migration(name):
    with open(os.path.join(MIGRATIONS, name)) as f:
        return f.read()


def totals_migrations(db):
    """Every migration after 001, in order: how the totals are kept today."""
    for name in sorted(os.listdir(MIGRATIONS)):
        if name.endswith(".sql") and name != "001_init.sql":
            db.psql(migration(name))


@pytest.fixture
def db():
    cluster = PgCluster()
    try:
        cluster.psql("DROP SCHEMA IF EXISTS usage CASCADE; CREATE SCHEMA usage;")
        cluster.psql(migration("001_init.sql"))
        yield cluster
    finally:
        cluster.destroy()


class Writes:
    """Random writes shaped like vap-usage's own (sync.c, sessions.c)."""

    def __init__(self, db, seed):
        self.db, self.rng = db, random.Random(seed)
        self.seq = 0
        self.sessions = 0

    def accesses(self, n, repeats=0):
        """n new accesses in one statement, plus `repeats` already applied ones."""
        rows = []
        for _ in range(n):
            self.seq += 1
            otp = "NULL" if self.rng.random() < 0.1 else str(self.rng.randint(1, 40))
            rows.append(f"({self.seq}, {otp}, '{self.rng.choice(AGENTS)}', "
                        f"now() - interval '{self.rng.randint(0, 10**6)} ms')")
        for _ in range(min(repeats, self.seq - n)):
            rows.append(f"({self.rng.randint(1, self.seq - n)}, 41, 'dentist', now())")
        self.rng.shuffle(rows)
        self.db.psql("INSERT INTO usage.accesses (outbox_seq, otp_id, agent_type, accessed_at)"
                     " VALUES " + ", ".join(rows) + " ON CONFLICT (outbox_seq) DO NOTHING")

    def session(self):
        """Started (no duration), then reported again with one, as a worker does."""
        self.sessions += 1
        sid, agent = f"s{self.sessions}", self.rng.choice(AGENTS)
        upsert = ("INSERT INTO usage.sessions AS t (session_id, agent_type, started_at,"
                  " duration_seconds) VALUES ('{sid}', '{agent}', now(), {d})"
                  " ON CONFLICT (session_id) DO UPDATE SET"
                  " duration_seconds = coalesce(t.duration_seconds, excluded.duration_seconds)")
        self.db.psql(upsert.format(sid=sid, agent=agent, d="NULL"))
        if self.rng.random() < 0.8:
            secs = round(self.rng.uniform(1, 300), 3)
            self.db.psql(upsert.format(sid=sid, agent=agent, d=secs))
            self.db.psql(upsert.format(sid=sid, agent=agent, d=secs + 1))  # a late repeat


def check(db, when):
    want, got = db.psql(AGGREGATE).stdout, db.psql(TOTALS).stdout
    assert got == want, f"{when}:\nexpected\n{want}\ngot\n{got}"


def test_totals_follow_every_kind_of_write(db):
    totals_migrations(db)
    w = Writes(db, 1)
    check(db, "empty")
    for round_ in range(5):
        w.accesses(60, repeats=10 if round_ else 0)
        for _ in range(4):
            w.session()
        check(db, f"round {round_}: inserts")
    for _ in range(5):
        w.accesses(1)
    check(db, "single accesses")
    db.psql("DELETE FROM usage.accesses WHERE id IN (SELECT id FROM usage.accesses"
            " ORDER BY accessed_at DESC LIMIT 1)")  # the latest: last_accessed_at moves
    check(db, "the latest access deleted")
    db.psql("DELETE FROM usage.accesses WHERE otp_id % 3 = 0 OR otp_id IS NULL")
    check(db, "a bulk delete (whole codes gone)")
    db.psql("DELETE FROM usage.accesses WHERE id % 2 = 0")
    check(db, "a bulk delete (codes partly left)")
    db.psql("DELETE FROM usage.sessions WHERE session_id IN ('s1', 's2')")
    check(db, "sessions deleted")
    db.psql("TRUNCATE usage.accesses")
    check(db, "accesses truncated")
    db.psql("TRUNCATE usage.sessions")
    check(db, "sessions truncated")
    w.accesses(30)
    w.session()
    check(db, "written again after truncation")


def test_rows_written_before_the_migration_are_counted(db):
    w = Writes(db, 2)
    w.accesses(200)
    for _ in range(6):
        w.session()
    totals_migrations(db)
    check(db, "right after the migrations")
    w.accesses(50)
    w.session()
    check(db, "and after more writes")
