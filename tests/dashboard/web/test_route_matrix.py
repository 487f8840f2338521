"""Walk the app's route table: every route is public or in the role matrix, and each role
gets exactly its column (called for real, as every role and anonymously)."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Mount

from dashboard.auth.roles import PUBLIC_ROUTES, ROLE_MATRIX, Role
from tests.dashboard.web.conftest import WebApp

PARAM = re.compile(r"{([^}:]+)(:[^}]+)?}")


def calls(app) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """(route name, method, concrete path) for every route of the app."""
    out = []
    for route in app.router.routes:
        if isinstance(route, Mount):
            out.append((route.name, "GET", route.path + "/app.css"))
            continue
        methods = sorted((route.methods or {"GET"}) - {"HEAD"})
        path = PARAM.sub("1", route.path)
        out.extend((route.name, m, path) for m in methods)
    # logging out ends the session; do it last
    return sorted(out, key=lambda c: c[0] == "logout")


def test_route_table_is_exactly_public_plus_matrix(webapp: WebApp) -> None:
    names = [r.name for r in webapp.app.router.routes]
    assert len(names) == len(set(names)), "route names must be unique"
    assert not PUBLIC_ROUTES & set(ROLE_MATRIX), "a route cannot be both public and in the matrix"
    assert set(names) == PUBLIC_ROUTES | set(ROLE_MATRIX)


def test_anonymous_reaches_only_public_routes(webapp: WebApp) -> None:
    client = webapp.client()
    for name, method, path in calls(webapp.app):
        r = client.request(method, path, headers={"accept": "text/html"}, follow_redirects=False)
        if name in PUBLIC_ROUTES:
            assert r.status_code != 401, (name, r.status_code)
            assert "/login?next" not in r.headers.get("location", ""), name
        else:
            assert r.status_code in (401, 303), (name, method, r.status_code)
            if r.status_code == 303:
                assert r.headers["location"].startswith("/login?next="), name
        api = client.request(method, path, follow_redirects=False)
        if name not in PUBLIC_ROUTES:
            assert api.status_code == 401, (name, method, api.status_code)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_gets_exactly_its_column(webapp: WebApp, role: Role) -> None:
    client, csrf = webapp.as_role(role.value)
    for name, method, path in calls(webapp.app):
        if name in PUBLIC_ROUTES:
            continue
        r = client.request(method, path, headers={"x-csrf-token": csrf}, follow_redirects=False)
        if role in ROLE_MATRIX[name]:
            assert r.status_code not in (401, 403), (role, name, method, r.status_code, r.text)
            assert r.status_code < 500, (role, name, method, r.status_code)
        else:
            assert r.status_code == 403, (role, name, method, r.status_code)
            assert r.json()["detail"] == "forbidden for your role"


@pytest.mark.parametrize("role", list(Role))
def test_api_tokens_follow_the_same_matrix(webapp: WebApp, role: Role) -> None:
    token = webapp.token(role.value, {"read", "write"})
    client = webapp.client()
    for name, method, path in calls(webapp.app):
        if name in PUBLIC_ROUTES or not path.startswith("/api/"):
            continue
        r = client.request(method, path, headers={"authorization": f"Bearer {token}"})
        if role in ROLE_MATRIX[name]:
            assert r.status_code not in (401, 403), (role, name, method, r.status_code)
            assert r.status_code < 500, (role, name, method, r.status_code)
        else:
            assert r.status_code == 403, (role, name, method, r.status_code)


def test_auditor_changes_nothing() -> None:
    for name, roles in ROLE_MATRIX.items():
        if Role.auditor in roles:
            assert not any(
                w in name
                for w in (
                    "create",
                    "update",
                    "revoke",
                    "enrol",
                    "set",
                    "add",
                    "delete",
                    "approve",
                    "reject",
                    "ack",
                )
            ) or name in ("logout", "language.set"), name


@pytest.mark.parametrize("role", list(Role))
def test_navigation_offers_exactly_the_pages_the_role_may_open(webapp: WebApp, role: Role) -> None:
    from dashboard.i18n import catalogue
    from dashboard.web.deps import NAV_ITEMS

    client, _ = webapp.as_role(role.value)
    html = client.get("/nodes").text
    nav = html[html.index("<nav>"):html.index("</nav>")]
    shown = re.findall(r'href="([^"]+)"', nav)
    expected = [href for route, href, _ in NAV_ITEMS if role in ROLE_MATRIX[route]]
    assert shown == expected
    for href in shown:
        assert client.get(href).status_code == 200, href
    assert all(key in catalogue("ja") and key in catalogue("en") for _, _, key in NAV_ITEMS)
