// releasepilot dashboard: progressive enhancement only. Every page reads and
// every command works without this script; with it, commands confirm in a
// dialog, lanes update live from the server's event stream (falling back to
// a periodic refresh), and soak countdowns tick.
(function () {
  "use strict";

  var dialog = null;
  var opener = null;

  function closeDialog() {
    if (dialog && dialog.open) dialog.close();
  }

  // Command buttons are links to a confirm page. Open that page's form in a
  // modal dialog instead: it shows the dry run (from → to) and a reason
  // field; Escape or Cancel closes it and focus returns to the button.
  function openConfirm(link) {
    opener = link;
    var url = link.getAttribute("href");
    fetch(url + (url.indexOf("?") < 0 ? "?" : "&") + "partial=1", { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) { return res.text(); })
      .then(function (html) {
        dialog.innerHTML = html;
        dialog.showModal();
        var reason = dialog.querySelector("textarea, [data-close]");
        if (reason) reason.focus();
      })
      .catch(function () { window.location.href = url; });
  }

  document.addEventListener("click", function (ev) {
    var a = ev.target.closest && ev.target.closest("a[data-confirm]");
    if (a && dialog && typeof dialog.showModal === "function") {
      ev.preventDefault();
      openConfirm(a);
      return;
    }
    var c = ev.target.closest && ev.target.closest("dialog [data-close]");
    if (c) {
      ev.preventDefault();
      closeDialog();
    }
  });

  function announce(text) {
    var el = document.getElementById("announcer");
    if (el && text) el.textContent = text;
  }

  function applyUpdate(up) {
    var lanes = document.getElementById("lanes");
    Object.keys(up.lanes || {}).forEach(function (id) {
      var old = document.getElementById("lane-" + id);
      if (old) {
        old.outerHTML = up.lanes[id];
      } else if (lanes) {
        var empty = lanes.querySelector(".empty");
        if (empty) empty.remove();
        lanes.insertAdjacentHTML("beforeend", up.lanes[id]);
      }
    });
    var rows = document.getElementById("audit-rows");
    if (rows && up.audit) rows.insertAdjacentHTML("afterbegin", up.audit);
    var table = document.getElementById("audit-table");
    if (table && up.last_event_id) table.setAttribute("data-last-event", String(up.last_event_id));
    if (up.said) announce(up.said.join(". "));
    tick();
  }

  function setLiveState(text) {
    var el = document.getElementById("live-state");
    if (el) el.textContent = text;
  }

  // Live updates: one EventSource per release page. When the stream is
  // not available, refresh the lanes and audit log every 15 seconds.
  function startLive(root) {
    var panelsURL = root.getAttribute("data-panels");
    var polling = null;

    function poll() {
      fetch(panelsURL, { credentials: "same-origin" })
        .then(function (res) {
          if (res.status === 401) { window.location.reload(); return null; }
          return res.ok ? res.text() : null;
        })
        .then(function (html) {
          if (html === null) return;
          root.innerHTML = html;
          setLiveState("(refreshed every 15 s)");
          tick();
        })
        .catch(function () {});
    }

    function fallback() {
      if (polling) return;
      setLiveState("(refreshed every 15 s)");
      polling = window.setInterval(poll, 15000);
    }

    if (!window.EventSource) { fallback(); return; }
    var table = document.getElementById("audit-table");
    var after = table ? table.getAttribute("data-last-event") : "0";
    var es = new EventSource(root.getAttribute("data-live") + "?after=" + encodeURIComponent(after || "0"));
    es.addEventListener("open", function () { setLiveState("(live)"); });
    es.addEventListener("update", function (ev) {
      try { applyUpdate(JSON.parse(ev.data)); } catch (e) { /* ignore a bad frame */ }
    });
    es.addEventListener("signedout", function () { es.close(); window.location.reload(); });
    es.addEventListener("error", function () {
      if (es.readyState === EventSource.CLOSED) { fallback(); }
      else { setLiveState("(reconnecting…)"); }
    });
  }

  function fmt(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    var d = Math.floor(s / 86400); s -= d * 86400;
    var h = Math.floor(s / 3600); s -= h * 3600;
    var m = Math.floor(s / 60); s -= m * 60;
    function two(n) { return (n < 10 ? "0" : "") + n; }
    if (d > 0) return d + "d " + two(h) + "h";
    if (h > 0) return h + "h " + two(m) + "m";
    if (m > 0) return m + "m " + two(s) + "s";
    return s + "s";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-until]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-until"));
      if (!isNaN(t)) el.textContent = fmt(t - now);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    dialog = document.getElementById("confirm-dialog");
    if (dialog) {
      dialog.addEventListener("close", function () {
        dialog.innerHTML = "";
        if (opener && document.body.contains(opener)) opener.focus();
      });
    }
    var root = document.getElementById("live");
    if (root) startLive(root);
    tick();
    window.setInterval(tick, 1000);
  });
})();
