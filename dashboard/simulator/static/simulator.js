// secroom demo simulator: draws the door (relay, contact, LEDs) live by polling
// /simulator/state. Served from 'self' (the CSP forbids inline scripts).
"use strict";

(function () {
  function setFill(root, cls, on, onColour, offColour) {
    var el = root.querySelector("." + cls);
    if (el) {
      el.setAttribute("fill", on ? onColour : offColour);
    }
  }

  function draw(state) {
    state.doors.forEach(function (d) {
      var root = document.querySelector('.sim-door[data-door="' + d.door + '"]');
      if (!root) {
        return;
      }
      setFill(root, "sim-leaf", d.contact_open, "#f5d76e", "#9ab");
      setFill(root, "sim-led-green", d.green, "#2a2", "#cdc");
      setFill(root, "sim-led-red", d.red, "#d22", "#dcc");
      setFill(root, "sim-relay", d.relay, "#2a2", "#777");
      var label = root.querySelector(".sim-contact-label");
      if (label) {
        label.textContent = d.contact_open ? "open" : "closed";
      }
      var relay = document.getElementById("relay-" + d.door);
      if (relay) {
        relay.textContent = "relay " + (d.relay ? "on" : "off");
        relay.className = "badge " + (d.relay ? "granted" : "");
      }
      var contact = document.getElementById("contact-" + d.door);
      if (contact) {
        contact.textContent = d.contact_open ? "open" : "closed";
        contact.className = "badge " + (d.contact_open ? "open" : "");
      }
    });
    var plugged = document.getElementById("usb-plugged");
    if (plugged) {
      plugged.textContent = state.usb_plugged.length ? state.usb_plugged.join(", ") : "-";
    }
  }

  function poll() {
    fetch("/simulator/state", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) { if (state) { draw(state); } })
      .catch(function () { /* the demo is stopping; the next poll retries */ })
      .finally(function () { window.setTimeout(poll, 400); });
  }

  document.addEventListener("DOMContentLoaded", poll);
})();
