// The portal: a card per game from GET /games with live counts (refreshed), a name, and
// create / join by code / quick play. A game with a web client opens it; one without shows
// the room code and how to join from the terminal.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var nameInput = $("name");
  nameInput.value = localStorage.getItem("usher.name") || "";
  nameInput.addEventListener("change", function () { localStorage.setItem("usher.name", nameInput.value.trim()); });

  var cards = {}; // by game id
  var HUES = [222, 160, 280, 20, 190, 330];

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function status(msg) {
    $("status").textContent = msg || "";
    $("status").hidden = !msg;
  }

  function busy(card, on) {
    card.el.querySelectorAll("button").forEach(function (b) { b.disabled = on; });
    card.el.classList.toggle("busy", on);
  }

  function showError(card, msg) {
    var e = card.el.querySelector(".error");
    e.textContent = msg;
    e.hidden = !msg;
  }

  // countdown disables the card's buttons for a rate limit's wait and says how long is left.
  function countdown(card, secs, room) {
    busy(card, true);
    var left = secs;
    (function tick() {
      if (left <= 0) { busy(card, false); showError(card, ""); return; }
      showError(card, "Too many tries. Please wait " + left + " second" + (left === 1 ? "" : "s") + " and try again.");
      left--;
      setTimeout(tick, 1000);
    })();
  }

  function joined(card, g, j) {
    if (g.web_client) {
      sessionStorage.setItem("usher.join", JSON.stringify(j));
      location.href = g.web_client + "?room=" + encodeURIComponent(j.room) + "&game=" + encodeURIComponent(g.id);
      return;
    }
    var r = card.el.querySelector(".result");
    r.textContent = "";
    var p = document.createElement("p");
    p.append("Room ");
    var b = document.createElement("b");
    b.className = "code-text";
    b.textContent = j.room;
    p.append(b, " is yours. This game has no web client: open it in the game, or from a terminal:");
    var c = document.createElement("code");
    c.textContent = "usher play --url " + location.origin + " --game " + g.id + " --room " + j.room;
    r.append(p, c);
    r.hidden = false;
  }

  function attempt(card, g, body) {
    showError(card, "");
    card.el.querySelector(".result").hidden = true;
    busy(card, true);
    Usher.join(nameInput.value.trim(), body).then(function (j) {
      busy(card, false);
      joined(card, g, j);
    }, function (err) {
      busy(card, false);
      if (err instanceof Usher.ApiError && err.code === "rate_limited") {
        countdown(card, err.retryAfter || 60, body.room);
        return;
      }
      showError(card, Usher.words(err, body.room));
    });
  }

  function makeCard(g, i) {
    var el = document.importNode($("card").content, true).firstElementChild;
    var card = { el: el, g: g };
    el.dataset.game = g.id;
    el.querySelector(".art").style.setProperty("--hue", HUES[i % HUES.length]);
    el.querySelector(".art").textContent = (g.name || g.id).slice(0, 1).toUpperCase();
    el.querySelector(".create").onclick = function () { attempt(card, card.g, { game: card.g.id }); };
    el.querySelector(".quick").onclick = function () { attempt(card, card.g, { game: card.g.id, quick: true }); };
    var code = el.querySelector(".code");
    code.addEventListener("input", function () {
      var at = code.selectionStart;
      code.value = code.value.toUpperCase().replace(/\s+/g, "");
      code.setSelectionRange(at, at);
      var bad = code.value ? Usher.checkCode(code.value) : "";
      // While typing, only a wrong character is worth a message; the length is checked on Join.
      showError(card, bad && !/^A room code has/.test(bad) ? bad : "");
      code.classList.toggle("bad", !!bad && !/^A room code has/.test(bad));
    });
    el.querySelector(".join").onsubmit = function (ev) {
      ev.preventDefault();
      var c = code.value.trim().toUpperCase();
      var bad = Usher.checkCode(c);
      if (bad) { showError(card, bad); code.classList.add("bad"); code.focus(); return; }
      attempt(card, card.g, { game: card.g.id, room: c });
    };
    return card;
  }

  function update(card, g) {
    card.g = g;
    var el = card.el;
    el.querySelector(".title").textContent = g.name || g.id;
    el.querySelector(".desc").textContent = g.description || "";
    el.querySelector(".players").textContent = plural(g.players, "player", "players") + " online";
    el.querySelector(".rooms").textContent = plural(g.rooms, "room", "rooms");
    el.querySelector(".max").textContent = "up to " + g.max_players;
    el.querySelector(".live").classList.toggle("active", g.players > 0);
  }

  function refresh() {
    return Usher.games().then(function (list) {
      status("");
      var box = $("games");
      list.forEach(function (g, i) {
        if (!cards[g.id]) {
          cards[g.id] = makeCard(g, i);
          box.appendChild(cards[g.id].el);
        }
        update(cards[g.id], g);
      });
      Object.keys(cards).forEach(function (id) {
        if (!list.some(function (g) { return g.id === id; })) { cards[id].el.remove(); delete cards[id]; }
      });
      $("empty").hidden = list.length > 0;
      box.setAttribute("aria-busy", "false");
    }, function (err) {
      status(err instanceof Usher.ApiError && err.code === "rate_limited" ? Usher.words(err) :
        "Cannot reach the game service right now. Retrying…");
    });
  }

  refresh();
  setInterval(function () { if (!document.hidden) refresh(); }, 5000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();
