"""The nodes page shows what a node reports in its health that needs a look."""

from __future__ import annotations

from dashboard.ingest.core import IngestCore
from tests.dashboard.conftest import SITE, T0, FakeNode
from tests.dashboard.ingest.test_node_health import feed, state
from tests.dashboard.web.conftest import WebApp


def test_nodes_page_shows_health_problems(webapp_db: WebApp) -> None:
    node = FakeNode()
    with webapp_db.sm() as s:
        node.enrol(s)
        problems = state(node, journal=4, unrecorded=1, disconnects=2, readers={"r-in": False})
        feed(IngestCore(site=SITE), s, problems, T0)
    client, _ = webapp_db.as_role("admin")
    client.get("/lang/en?next=/nodes")
    html = client.get("/nodes").text
    for text in (
        "journal failures: 4",
        "kept shut (unrecorded): 1",
        "broker disconnects: 2",
        "reader down: r-in",
    ):
        assert text in html, text


def test_nodes_page_shows_each_nodes_version_and_an_unsupported_one(webapp_db: WebApp) -> None:
    from tests.dashboard.ingest.test_versions import state as announced

    old, new, quiet = FakeNode("gw-old"), FakeNode("gw-new"), FakeNode("gw-quiet")
    with webapp_db.sm() as s:
        for n in (old, new, quiet):
            n.enrol(s)
        core = IngestCore(site=SITE)
        core.process(s, [announced(old, {"software": "0.0.3"}),
                         announced(new, {"software": "0.1.4"}), announced(quiet)], T0)
        s.commit()
    client, _ = webapp_db.as_role("admin")
    client.get("/lang/en?next=/nodes")
    html = client.get("/nodes").text
    rows = {n: html.split(f'data-node="{n}"')[1].split("</tr>")[0]
            for n in ("gw-old", "gw-new", "gw-quiet")}
    assert "0.0.3" in rows["gw-old"] and "not supported" in rows["gw-old"]
    assert "0.1.4" in rows["gw-new"] and "not supported" not in rows["gw-new"]
    assert "not announced" in rows["gw-quiet"] and "not supported" not in rows["gw-quiet"]
