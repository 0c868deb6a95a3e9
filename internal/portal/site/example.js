// The example game's web client: joins (or picks up the portal's join), connects through
// Usher, shows the lobby (the players of the welcome message, named as they say hello) and a
// chat. The example server relays every message unchanged to the other players, so the
// messages here are the client's own JSON: hello / here (names), chat, bye.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var q = new URLSearchParams(location.search);
  var game = q.get("game") || "example";
  var room = (q.get("room") || "").toUpperCase();
  var me = null, ws = null;
  var names = {};   // player id → name
  var present = []; // player ids in the room

  function notice(msg, bad) {
    $("notice").textContent = msg || "";
    $("notice").hidden = !msg;
    $("notice").classList.toggle("bad", !!bad);
  }

  function conn(text, cls) {
    $("conn").textContent = text;
    $("conn").className = "conn " + (cls || "");
  }

  function renderPlayers() {
    var ul = $("players");
    ul.textContent = "";
    present.forEach(function (id) {
      var li = document.createElement("li");
      var av = document.createElement("span");
      av.className = "avatar";
      var n = names[id] || "…";
      av.textContent = n.slice(0, 1).toUpperCase();
      var label = document.createElement("span");
      label.className = "pname";
      label.textContent = n + (me && id === me.player_id ? " (you)" : "");
      li.append(av, label);
      li.dataset.player = id;
      ul.appendChild(li);
    });
    $("count").textContent = present.length + (me && me.max_players ? " / " + me.max_players : "");
  }

  function line(who, text, cls) {
    var li = document.createElement("li");
    li.className = cls || "";
    if (who) {
      var b = document.createElement("b");
      b.textContent = who;
      li.append(b, " ");
    }
    li.append(text);
    $("messages").appendChild(li);
    li.scrollIntoView({ block: "end" });
  }

  function send(obj) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
  }

  function addPlayer(id, name) {
    if (name) names[id] = name;
    if (present.indexOf(id) < 0) present.push(id);
    renderPlayers();
  }

  function onMessage(ev) {
    var m;
    try { m = JSON.parse(ev.data); } catch (e) { line("", String(ev.data), "raw"); return; }
    switch (m.type) {
      case "welcome":
        present = m.players.slice();
        names[me.player_id] = me.name;
        renderPlayers();
        conn("connected", "on");
        $("text").disabled = $("send").disabled = false;
        line("", "You joined room " + m.room + ".", "sys");
        send({ type: "hello", player: me.player_id, name: me.name });
        break;
      case "hello":
        addPlayer(m.player, m.name);
        line("", m.name + " joined.", "sys");
        send({ type: "here", player: me.player_id, name: me.name });
        break;
      case "here":
        addPlayer(m.player, m.name);
        break;
      case "bye":
        present = present.filter(function (id) { return id !== m.player; });
        renderPlayers();
        line("", (names[m.player] || "A player") + " left.", "sys");
        break;
      case "chat":
        if (m.player) addPlayer(m.player, m.name);
        line(m.name || "?", m.text || "");
        break;
      default:
        line("", ev.data, "raw");
    }
  }

  function start(j) {
    me = j;
    room = j.room;
    $("room").textContent = j.room;
    document.title = "Room " + j.room + " — Usher";
    history.replaceState(null, "", "?game=" + encodeURIComponent(game) + "&room=" + encodeURIComponent(j.room));
    Usher.connect(j).then(function (s) {
      ws = s;
      ws.onmessage = onMessage;
      ws.onclose = function (ev) {
        $("text").disabled = $("send").disabled = true;
        conn("disconnected", "off");
        notice(Usher.closeWords(ev.code, ev.reason), ev.code !== 1000);
        line("", "Disconnected.", "sys");
      };
    });
  }

  // The portal leaves its join here; without one (a reload, a shared link) join by the code.
  var stored = sessionStorage.getItem("usher.join");
  sessionStorage.removeItem("usher.join");
  var j = null;
  try { j = JSON.parse(stored || "null"); } catch (e) { j = null; }
  if (j && (!room || j.room === room) && new Date(j.expires_at).getTime() > Date.now()) {
    start(j);
  } else if (room) {
    $("room").textContent = room;
    Usher.join(localStorage.getItem("usher.name") || "", { game: game, room: room }).then(start, function (err) {
      conn("not connected", "off");
      notice(Usher.words(err, room), true);
    });
  } else {
    conn("not connected", "off");
    notice("No room given: pick a game on the portal first.", true);
  }

  $("say").onsubmit = function (ev) {
    ev.preventDefault();
    var t = $("text").value.trim();
    if (!t || !me) return;
    send({ type: "chat", player: me.player_id, name: me.name, text: t });
    line(me.name, t, "mine");
    $("text").value = "";
  };
  $("copy").onclick = function () {
    if (navigator.clipboard) navigator.clipboard.writeText(room).then(function () { $("copy").textContent = "Copied"; });
  };
  window.addEventListener("pagehide", function () {
    if (me) send({ type: "bye", player: me.player_id });
    if (ws) ws.close(1000, "left");
  });
})();
