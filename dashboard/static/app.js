// secroom dashboard: live pages over Server-Sent Events, confirmations, printing. No inline
// script, no external asset (the room's network is isolated; the CSP allows only 'self').
//
// Live: every element with data-live-region (and an id) shows the present (presence, door log,
// review queue, overview tiles). When an event arrives, the page fetches itself again and swaps
// those regions for the server's fresh rendering, so a count and the list it counts always
// come from the same query. The stream reconnects after a dashboard restart and then refreshes.
// Camera cells (data-camera-for = the record's event id) are fetched again, rendered by the
// server, when a still of their record arrives or its image was stored.
"use strict";

(function () {
  var refreshing = false;
  var again = false;
  var refreshes = 0;

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
    var camera = document.createElement("td");
    if (ev.kind_id && ev.kind_id.indexOf("camera.") !== 0) {
      camera.dataset.cameraFor = text(ev.id); // a record a camera may have filmed
    }
    tr.appendChild(camera);
    tbody.insertBefore(tr, tbody.firstChild);
    while (tbody.rows.length > 50) {
      tbody.deleteRow(tbody.rows.length - 1);
    }
  }

  // The record's camera cells, as the server renders them (checks, and the image for the roles
  // that may see it): fetched when a still of the record arrives or its image was stored.
  function cameraCells(record) {
    var cells = Array.prototype.filter.call(
      document.querySelectorAll("[data-camera-for]"),
      function (el) { return el.dataset.cameraFor === record; });
    var parts = /^([A-Za-z0-9_.-]{1,64}):([0-9]{1,19})$/.exec(record || "");
    if (!cells.length || !parts) {
      return;
    }
    fetch("/camera/records/" + parts[1] + "/" + parts[2] + "/stills",
          { credentials: "same-origin", headers: { "X-Live-Refresh": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) {
          return;
        }
        var doc = new DOMParser().parseFromString(html, "text/html");
        cells.forEach(function (cell) {
          var nodes = Array.prototype.map.call(doc.body.childNodes, function (n) {
            return document.importNode(n, true);
          });
          cell.replaceChildren.apply(cell, nodes);
          cell.dataset.cameraUpdates = String((parseInt(cell.dataset.cameraUpdates, 10) || 0) + 1);
        });
      })
      .catch(function () { /* the next still or refresh shows it */ });
  }

  function regions(root) {
    return Array.prototype.slice.call(root.querySelectorAll("[data-live-region][id]"));
  }

  function refresh() {
    if (!regions(document).length) {
      return;
    }
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Live-Refresh": "1" } })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) {
        if (!html) {
          return;
        }
        var doc = new DOMParser().parseFromString(html, "text/html");
        regions(document).forEach(function (old) {
          var fresh = doc.getElementById(old.id);
          if (!fresh || old.contains(document.activeElement) && document.activeElement !== document.body) {
            return;
          }
          old.replaceWith(document.adoptNode(fresh));
        });
        refreshes += 1;
        document.body.dataset.liveRefreshes = String(refreshes);
      })
      .catch(function () { /* the stream's error handler shows the state */ })
      .then(function () {
        refreshing = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  function setState(state) {
    document.body.dataset.liveState = state;
    var badge = document.getElementById("live-state");
    if (badge) {
      badge.dataset.state = state;
      badge.textContent = badge.dataset["label" + state.charAt(0).toUpperCase() + state.slice(1)] || badge.textContent;
    }
  }

  function startLive() {
    if (!window.EventSource || document.body.dataset.live !== "1") {
      return;
    }
    var dropped = false;
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
      document.body.dataset.lastEvent = text(ev.id);
      if (ev.record) {
        cameraCells(ev.record);
      }
      refresh();
    });
    source.addEventListener("camera", function (msg) {
      var ev;
      try {
        ev = JSON.parse(msg.data);
      } catch (e) {
        return;
      }
      if (ev.record) {
        cameraCells(ev.record);
      }
      refresh();
    });
    source.addEventListener("session_ended", function () {
      source.close();
      document.body.dataset.liveState = "ended";
      window.location.assign("/login");
    });
    source.addEventListener("node", refresh);
    source.addEventListener("open", function () {
      setState("open");
      if (dropped) {
        dropped = false;
        refresh(); // catch up on what happened while the stream was down
      }
    });
    source.addEventListener("error", function () {
      dropped = true;
      setState("retrying");
      if (source.readyState === 2) { // closed for good (e.g. 503 while restarting): retry
        window.setTimeout(startLive, 3000);
      }
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
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
    document.querySelectorAll("a[data-back]").forEach(function (link) {
      link.addEventListener("click", function (e) {
        if (window.history.length > 1) {
          e.preventDefault();
          window.history.back();
        }
      });
    });
  }

  // A table wider than a phone scrolls inside itself: let the keyboard reach it too.
  function scrollables() {
    document.querySelectorAll("main table:not(.cards)").forEach(function (table) {
      if (table.scrollWidth > table.clientWidth + 1) {
        table.setAttribute("tabindex", "0");
      }
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

  // A blank card being issued at a reader: ask every second how far the node got, and reload
  // when the state moves on (dashboard/web/personalise.py).
  function personaliseRequest() {
    var box = document.getElementById("personalise-last");
    var open = { requested: true, sent: true, waiting: true };
    if (!box || !open[box.dataset.state] || !window.fetch) {
      return;
    }
    var poll = function () {
      window.fetch(box.dataset.statusUrl, {
        credentials: "same-origin", headers: { accept: "application/json" }
      }).then(function (r) {
        return r.ok ? r.json() : { state: "gone" };
      }).then(function (status) {
        if (status.state !== box.dataset.state) {
          window.location.reload();
          return;
        }
        window.setTimeout(poll, 1000);
      }).catch(function () {
        window.setTimeout(poll, 2000);
      });
    };
    window.setTimeout(poll, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    startLive();
    confirmations();
    enrolWindow();
    personaliseRequest();
    scrollables();
  });
})();
