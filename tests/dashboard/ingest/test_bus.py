from __future__ import annotations

import asyncio
import threading

from dashboard.bus import Bus


def test_fan_out_by_topic():
    bus = Bus()
    events, anomalies = bus.subscribe(("event",)), bus.subscribe(("anomaly",))
    bus.publish("event", {"seq": 1})
    bus.publish("anomaly", {"kind": "gap"})
    assert [m.data for m in events.drain()] == [{"seq": 1}]
    assert [m.data for m in anomalies.drain()] == [{"kind": "gap"}]


def test_slow_subscriber_drops_oldest_and_counts():
    bus = Bus()
    sub = bus.subscribe(maxsize=3)
    for i in range(5):
        bus.publish("event", {"i": i})
    assert [m.data["i"] for m in sub.drain()] == [2, 3, 4]
    assert sub.dropped == 2


def test_blocking_get_wakes_on_publish_from_another_thread():
    bus = Bus()
    sub = bus.subscribe()
    threading.Thread(target=bus.publish, args=("event", {"x": 1})).start()
    msg = sub.get(timeout=10)
    assert msg is not None and msg.data == {"x": 1}


def test_async_get_and_close():
    bus = Bus()

    async def main():
        sub = bus.subscribe()
        assert await sub.aget(timeout=0.01) is None
        loop = asyncio.get_running_loop()
        loop.run_in_executor(None, bus.publish, "node", {"node": "gw1"})
        msg = await sub.aget(timeout=10)
        sub.close()
        return msg, bus.subscribers

    msg, left = asyncio.run(main())
    assert msg.data == {"node": "gw1"} and left == 0


def test_stopping_the_server_ends_every_live_subscription():
    """Ctrl-C: the server closes the bus's subscriptions before uvicorn waits for connections,
    so an open live stream ends instead of holding the dashboard up."""
    import signal

    import uvicorn

    from dashboard.web.serve import Server

    bus = Bus()
    subs = [bus.subscribe(("event",)) for _ in range(3)]
    server = Server(uvicorn.Config(app=None), bus)  # type: ignore[arg-type]
    server.handle_exit(signal.SIGINT, None)
    assert server.should_exit
    assert all(s.closed for s in subs) and bus.subscribers == 0
    assert subs[0].get(timeout=5) is None  # a waiting reader returns at once
