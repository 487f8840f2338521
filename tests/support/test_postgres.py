"""The tests' PostgreSQL: a given SECROOM_TEST_PG_URL must answer; without it a private cluster
runs as an unprivileged user, answers, and is gone (process and folder) afterwards."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.support import port_open, unavailable
from tests.support.postgres import ENV, PostgresUnavailable, postgres_url

pytestmark = pytest.mark.integration


def test_a_given_url_that_does_not_answer_is_a_clear_error() -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    with pytest.raises(PostgresUnavailable, match=r"does not answer .*connection.*unset it"), \
            postgres_url({ENV: url}):
        raise AssertionError("a dead server was handed out")


def test_without_a_url_a_private_cluster_runs_and_is_removed() -> None:
    try:
        cm = postgres_url({})
        url = cm.__enter__()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    try:
        engine = create_engine(url, poolclass=NullPool)
        with engine.connect() as conn:
            user = conn.execute(text("SELECT usename FROM pg_stat_activity WHERE pid = "
                                     "pg_backend_pid()")).scalar()
            data = conn.execute(text("SHOW data_directory")).scalar()
            owner_uid = os.stat(data).st_uid
        engine.dispose()
        assert user == "postgres"
        if os.geteuid() == 0:
            assert owner_uid != 0, "initdb refuses root: the cluster belongs to another user"
        port = engine.url.port
        assert port is not None and port_open(port)
    finally:
        cm.__exit__(None, None, None)
    assert not port_open(port), "the server is stopped"
    assert not os.path.exists(data), "its folder is removed"
