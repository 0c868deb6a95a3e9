// The admin page: renders the state Usher streams as server-sent events (/api/events) and
// sends the two actions (close a room, disconnect a player) after a confirmation.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function age(s) {
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  }

  function toast(msg, bad) {
    var t = $("toast");
    t.textContent = msg;
    t.className = "toast" + (bad ? " bad" : "");
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.hidden = true; }, 4000);
  }

  // confirmThen asks in a dialog, then runs fn.
  function confirmThen(text, fn) {
    var d = $("confirm");
    $("confirm-text").textContent = text;
    d.onclose = function () { if (d.returnValue === "ok") fn(); };
    d.returnValue = "";
    d.showModal();
  }

  function post(path, done) {
    fetch(path, { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } })
      .then(function (r) {
        return r.json().then(function (b) { return { ok: r.ok, b: b }; });
      })
      .then(function (x) {
        if (x.ok) done(x.b); else toast(x.b.error ? x.b.error.message : "refused", true);
      })
      .catch(function (e) { toast("request failed: " + e, true); });
  }

  function enc(s) { return encodeURIComponent(s); }

  function renderTotals(t) {
    $("t-games").textContent = t.games;
    $("t-rooms").textContent = t.rooms;
    $("t-players").textContent = t.players;
    $("t-seats").textContent = t.seats;
    var n = 0, parts = [];
    Object.keys(t.servers).sort().forEach(function (k) { n += t.servers[k]; parts.push(t.servers[k] + " " + k); });
    $("t-servers").textContent = n;
    $("t-states").textContent = parts.join(" · ");
  }

  function renderRooms(rooms) {
    var body = document.querySelector("#rooms tbody");
    body.textContent = "";
    $("no-rooms").hidden = rooms.length > 0;
    $("rooms").hidden = rooms.length === 0;
    rooms.forEach(function (r) {
      var tr = el("tr");
      tr.dataset.room = r.code;
      tr.appendChild(el("td", "", r.game)).dataset.label = "Game";
      tr.appendChild(el("td", "code", r.code)).dataset.label = "Code";
      tr.appendChild(el("td", "", r.public ? "yes" : "no")).dataset.label = "Public";
      var seats = el("td", "seats");
      seats.dataset.label = "Seats";
      var bar = el("span", "bar");
      var fill = el("span", "fill");
      fill.style.width = Math.round(100 * r.seats / Math.max(r.max_players, 1)) + "%";
      bar.appendChild(fill);
      seats.appendChild(el("span", "num", r.seats + " / " + r.max_players));
      seats.appendChild(bar);
      tr.appendChild(seats);
      var who = el("td", "players");
      who.dataset.label = "Players";
      who.appendChild(el("span", "num connected", String(r.connected)));
      r.players.forEach(function (p) {
        var chip = el("span", "chip");
        chip.appendChild(el("span", "", p.name));
        chip.title = p.id + " · connected " + age(p.connected_seconds);
        var x = el("button", "chip-x", "×");
        x.title = "Disconnect " + p.name;
        x.setAttribute("aria-label", "Disconnect " + p.name);
        x.onclick = function () {
          confirmThen("Disconnect " + p.name + " (" + p.id + ") from room " + r.code + "? They get close code 4005.", function () {
            post("/api/rooms/" + enc(r.game) + "/" + enc(r.code) + "/players/" + enc(p.id) + "/disconnect",
              function () { toast(p.name + " disconnected"); });
          });
        };
        chip.appendChild(x);
        who.appendChild(chip);
      });
      tr.appendChild(who);
      tr.appendChild(el("td", "server muted", r.server)).dataset.label = "Server";
      tr.appendChild(el("td", "", age(r.age_seconds))).dataset.label = "Age";
      var act = el("td", "act");
      var b = el("button", "danger small close-room", "Close room");
      b.onclick = function () {
        confirmThen("Close room " + r.code + " of " + r.game + "? Its " + r.connected +
          " connected player(s) are disconnected (close code 4006) and the room ends.", function () {
          post("/api/rooms/" + enc(r.game) + "/" + enc(r.code) + "/close",
            function (x) { toast("Room " + r.code + " closed (" + x.disconnected + " disconnected)"); });
        });
      };
      act.appendChild(b);
      tr.appendChild(act);
      body.appendChild(tr);
    });
    $("rooms-note").textContent = rooms.length ? rooms.length + " live" : "";
  }

  var NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }

  function renderChart(h, every, now) {
    var c = $("chart");
    c.textContent = "";
    var W = 600, H = 140, P = 6;
    var end = Math.floor(now / 1000), start = end - 3600;
    var max = 1;
    h.forEach(function (s) { max = Math.max(max, s.players, s.rooms); });
    for (var i = 1; i <= 3; i++) {
      var y = P + (H - 2 * P) * i / 4;
      c.appendChild(svg("line", { x1: 0, x2: W, y1: y, y2: y, "class": "grid" }));
    }
    function line(key, cls) {
      if (!h.length) return;
      var pts = h.map(function (s) {
        var x = (Math.max(s.t, start) - start) / 3600 * W;
        var y = H - P - (H - 2 * P) * s[key] / max;
        return x.toFixed(1) + "," + y.toFixed(1);
      });
      if (pts.length === 1) pts.push(W + "," + pts[0].split(",")[1]);
      c.appendChild(svg("polyline", { points: pts.join(" "), "class": cls }));
    }
    line("rooms", "rooms");
    line("players", "players");
    $("chart-note").textContent = "peak " + max + " · a sample every " + every + "s · " +
      (h.length > 1 ? "since " + new Date(h[0].t * 1000).toLocaleTimeString() : "collecting samples");
  }

  function renderErrors(errs) {
    var ul = $("errors");
    ul.textContent = "";
    $("no-errors").hidden = errs.length > 0;
    errs.slice(0, 20).forEach(function (e) {
      var li = el("li", e.level === "ERROR" ? "err" : "warn");
      li.appendChild(el("time", "muted", new Date(e.time).toLocaleTimeString()));
      li.appendChild(el("span", "lvl", e.level));
      li.appendChild(el("span", "msg", e.message));
      li.appendChild(el("code", "attrs", e.attrs));
      ul.appendChild(li);
    });
  }

  function render(st) {
    renderTotals(st.totals);
    renderRooms(st.rooms);
    // The chart ends with the figures of now, so it draws a line from the first sample on.
    var h = st.history.concat([{ t: Math.floor(Date.now() / 1000), players: st.totals.players, rooms: st.totals.rooms }]);
    renderChart(h, st.history_every_seconds, Date.now());
    renderErrors(st.errors);
  }

  function live(on, text) {
    var l = $("live");
    l.className = "live " + (on ? "on" : "off");
    l.textContent = text;
  }

  var es = new EventSource("/api/events");
  es.addEventListener("state", function (ev) {
    live(true, "live");
    render(JSON.parse(ev.data));
  });
  es.onerror = function () { live(false, "reconnecting…"); };
})();
