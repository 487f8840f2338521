"""The nodes page: a pending node is approved for roles chosen in a select (Japanese by
default), the roles show in the node list, and an admin changes them."""

from __future__ import annotations

from dashboard.models import Node
from tests.dashboard.conftest import FakeNode
from tests.dashboard.web.conftest import WebApp


def test_approve_for_roles_and_show_them(webapp_db: WebApp) -> None:
    node = FakeNode("pc-07")
    with webapp_db.sm() as s:
        node.enrol(s, status="pending", roles=())
    client, csrf = webapp_db.as_role("admin")
    html = client.get("/nodes").text
    assert '<select name="roles" multiple required' in html and "PC エージェント" in html
    refused = client.post(f"/nodes/pc-07/approve?key={node.public}",
                          data={"csrf_token": csrf})  # no role chosen
    assert refused.status_code == 400
    done = client.post(f"/nodes/pc-07/approve?key={node.public}",
                       data={"csrf_token": csrf, "roles": ["host_agent"]}, follow_redirects=False)
    assert done.status_code == 303
    row = client.get("/nodes").text.split('data-node="pc-07"')[1].split("</tr>")[0]
    assert "PC エージェント" in row and "承認済み" in row
    client.post("/nodes/pc-07/roles", data={"csrf_token": csrf,
                                            "roles": ["host_agent", "backup_job"]})
    with webapp_db.sm() as s:
        assert s.get(Node, "pc-07").roles == "backup_job,host_agent"
    client.get("/lang/en?next=/nodes")
    row = client.get("/nodes").text.split('data-node="pc-07"')[1].split("</tr>")[0]
    assert "Host agent" in row and "Backup job" in row


def test_api_approve_needs_roles(webapp_db: WebApp) -> None:
    node = FakeNode("pc-08")
    with webapp_db.sm() as s:
        node.enrol(s, status="pending", roles=())
    client, csrf = webapp_db.as_role("admin")
    headers = {"X-CSRF-Token": csrf}
    assert client.post("/api/v1/nodes/pc-08/approve", json={"public_key": node.public},
                       headers=headers).status_code == 422
    got = client.post("/api/v1/nodes/pc-08/approve",
                      json={"public_key": node.public, "roles": ["host_agent"]}, headers=headers)
    assert got.status_code == 200 and got.json()["roles"] == ["host_agent"]
    keys = client.get("/api/v1/nodes/pc-08/keys").json()
    assert [(k["public_key"], k["status"]) for k in keys] == [(node.public, "approved")]
