// secroom dashboard: live updates over Server-Sent Events and confirmations. No inline script,
// no external asset (the room's network is isolated; the CSP allows only 'self').
"use strict";

(function () {
  function text(value) {
    return value === null || value === undefined ? "" : String(value);
  }

  function addRow(tbody, ev) {
    var tr = document.createElement("tr");
    tr.className = ev.granted === false ? "denied live" : "live";
    [ev.time_local, ev.kind, ev.door, ev.person, ev.result].forEach(function (v) {
      var td = document.createElement("td");
      td.textContent = text(v);
      tr.appendChild(td);
    });
    tbody.insertBefore(tr, tbody.firstChild);
    while (tbody.rows.length > 50) {
      tbody.deleteRow(tbody.rows.length - 1);
    }
  }

  function bump(id) {
    var el = document.getElementById(id);
    if (el) {
      el.textContent = String((parseInt(el.textContent, 10) || 0) + 1);
    }
  }

  function startLive() {
    if (!window.EventSource || document.body.dataset.live !== "1") {
      return;
    }
    var source = new EventSource("/live");
    source.addEventListener("event", function (msg) {
      var ev;
      try {
        ev = JSON.parse(msg.data);
      } catch (e) {
        return;
      }
      document.querySelectorAll("tbody[data-live-rows=events]").forEach(function (tbody) {
        addRow(tbody, ev);
      });
      if (ev.kind === "door.access" && ev.granted && ev.direction === "in") {
        bump("entries-today");
      }
      if (ev.kind === "anomaly") {
        bump("open-alarms");
      }
      document.body.dataset.lastEvent = text(ev.id);
    });
    source.addEventListener("session_ended", function () {
      source.close();
      document.body.dataset.liveState = "ended";
      window.location.assign("/login");
    });
    source.addEventListener("open", function () {
      document.body.dataset.liveState = "open";
    });
    source.addEventListener("error", function () {
      document.body.dataset.liveState = "retrying";
    });
  }

  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.dataset.confirm)) {
          e.preventDefault();
        }
      });
    });
  }

  // An open enrolment window: count down, and ask the dashboard every second whether a card
  // was presented (or a tap ignored); then reload to show it (dashboard/web/enrol.py).
  function enrolWindow() {
    var box = document.getElementById("enrol-window");
    var counter = document.getElementById("enrol-countdown");
    if (!box || !counter || !window.fetch) {
      return;
    }
    var deadline = Date.now() + (parseInt(box.dataset.secondsLeft, 10) || 0) * 1000;
    var tick = function () {
      counter.textContent = String(Math.max(0, Math.ceil((deadline - Date.now()) / 1000)));
    };
    var poll = function () {
      window.fetch(box.dataset.statusUrl, {
        credentials: "same-origin", headers: { accept: "application/json" }
      }).then(function (r) {
        return r.ok ? r.json() : { state: "gone" };
      }).then(function (status) {
        if (status.state !== "open" || String(status.ignored) !== box.dataset.ignored) {
          window.location.reload();
          return;
        }
        deadline = Date.now() + status.seconds_left * 1000;
        window.setTimeout(poll, 1000);
      }).catch(function () {
        window.setTimeout(poll, 2000);
      });
    };
    tick();
    window.setInterval(tick, 250);
    window.setTimeout(poll, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    startLive();
    confirmations();
    enrolWindow();
  });
})();
