"""The log-in throttle holds under concurrency: 24 wrong passwords sent at once to a real uvicorn
get at most the limit of password checks, per account and per source address, on SQLite and on
PostgreSQL; the right password sent while those checks are still running is refused as throttled.

The argon2 verification is instrumented (``dashboard.auth.passwords._hasher``): it counts, and
holds every check at a gate until all requests have either entered a check or been answered.
That widens the race to its worst case on purpose, so the test is deterministic: without an
atomic reservation every one of the 24 requests would pass the throttle before any failure is
recorded.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import httpx
import pytest

from dashboard.app import create_app
from dashboard.auth import passwords
from dashboard.i18n import catalogue
from dashboard.settings import LoginThrottle
from tests.dashboard.web.conftest import PASSWORD, WebApp, add_user, serve_app

BURST = 24
PER_USER, PER_IP = 5, 8


class GatedHasher:
    """The real argon2 hasher, whose ``verify`` is counted and waits for ``gate``."""

    def __init__(self, real: Any, progress: threading.Condition) -> None:
        self.real = real
        self.progress = progress
        self.gate = threading.Event()
        self.checks = 0

    def verify(self, stored: str, password: str) -> bool:
        with self.progress:
            self.checks += 1
            self.progress.notify_all()
        self.gate.wait(60)
        return bool(self.real.verify(stored, password))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def login_client(base_url: str) -> tuple[httpx.Client, str]:
    """A client holding the log-in form's CSRF cookie, and the form's token."""
    client = httpx.Client(base_url=base_url, timeout=60)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    return client, token.group(1)


@pytest.mark.parametrize("scope", ["account", "source"])
def test_concurrent_wrong_passwords_get_at_most_the_limit_of_checks(
    webapp_db: WebApp, scope: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = webapp_db.settings.model_copy(update={"login_throttle": LoginThrottle(
        window_s=600, max_failures_per_user=PER_USER, max_failures_per_ip=PER_IP)})
    app = create_app(settings, sessionmaker=webapp_db.sm, clock=webapp_db.clock)
    add_user(webapp_db.sm, settings, "carol", "auditor")
    limit = PER_USER if scope == "account" else PER_IP
    # per account: all 24 guess carol's password; per source: 24 different names, one address
    names = ["carol"] * BURST if scope == "account" else [f"guess{i}" for i in range(BURST)]
    progress = threading.Condition()
    hasher = GatedHasher(passwords._hasher, progress)
    monkeypatch.setattr(passwords, "_hasher", hasher)
    answers: dict[int, httpx.Response] = {}

    with serve_app(app) as base_url:
        clients = [login_client(base_url) for _ in range(BURST + 2)]

        def attempt(i: int, username: str, password: str) -> None:
            client, token = clients[i]
            r = client.post("/login", data={"username": username, "password": password,
                                            "csrf_token": token})
            with progress:
                answers[i] = r
                progress.notify_all()

        start = threading.Barrier(BURST)

        def wrong(i: int) -> None:
            start.wait(30)
            attempt(i, names[i], "wrong password!!")

        threads = [threading.Thread(target=wrong, args=(i,)) for i in range(BURST)]
        try:
            for th in threads:
                th.start()
            with progress:  # every request is either inside a check or answered
                assert progress.wait_for(lambda: hasher.checks + len(answers) >= BURST, 60)
            # the right password, sent while the burst's checks are still running
            right = threading.Thread(target=attempt, args=(BURST, "carol", PASSWORD))
            right.start()
            with progress:
                assert progress.wait_for(
                    lambda: BURST in answers or hasher.checks + len(answers) > BURST, 60)
            checks_in_burst = hasher.checks
        finally:
            hasher.gate.set()
            for th in threads:
                th.join(60)
        right.join(60)
        # after the burst, inside the window, the right password is still refused
        attempt(BURST + 1, "carol", PASSWORD)
        for client, _ in clients:
            client.close()

    print(f"{scope}: {checks_in_burst} password checks for {BURST} concurrent wrong passwords"
          f" (limit {limit}); statuses {sorted(r.status_code for r in answers.values())}")
    assert checks_in_burst <= limit, f"{checks_in_burst} checks, the limit is {limit}"
    assert hasher.checks == checks_in_burst, "a throttled right password was checked"
    statuses = [answers[i].status_code for i in range(BURST)]
    assert statuses.count(401) == checks_in_burst
    assert statuses.count(429) == BURST - checks_in_burst
    message = catalogue("ja")["login.error.throttled"]
    for i in (BURST, BURST + 1):
        assert answers[i].status_code == 429, answers[i].status_code
        assert message in answers[i].text
        assert "secroom_session" not in answers[i].cookies
