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
