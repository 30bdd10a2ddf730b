"""pytest fixtures: one PostgreSQL and one stack for the session, fresh ones for tests
that kill processes or change global state. The session fails if any service log shows
a sanitizer report."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import STARTED, PgCluster, Stack, finish_stacks  # noqa: E402

_stacks = STARTED  # every stack a test starts; their logs are scanned at the end


@pytest.fixture(scope="session")
def pg():
    cluster = PgCluster()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def stack(pg):
    s = Stack(pg).start()
    _stacks.append(s)
    yield s
    s.stop()


@pytest.fixture
def fresh_stack():
    """A whole stack with its own database, for destructive tests."""
    cluster = PgCluster()
    s = Stack(cluster).start()
    _stacks.append(s)
    yield s
    s.stop()
    cluster.destroy()


def pytest_sessionfinish(session, exitstatus):
    finish_stacks(_stacks, session)
