// usher.js: the few calls a browser client makes to Usher (token, games, join, connect), and
// every API error in words. Shared by the portal and the example game's page; no framework.
// The token is kept in sessionStorage (this tab only); tickets are never put in a URL.
var Usher = (function () {
  "use strict";
  var api = "";
  var ready = fetch("config.json", { cache: "no-store" })
    .then(function (r) { return r.ok ? r.json() : {}; })
    .then(function (c) { api = (c.api || "").replace(/\/+$/, ""); })
    .catch(function () {});

  // The room code alphabet: no 0 O 1 I L, which look alike.
  var ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";
  var LOOKALIKE = { "0": "O or 0", "O": "O or 0", "1": "1, I or L", "I": "1, I or L", "L": "1, I or L" };

  // checkCode returns "" for a well-formed code, or what is wrong with it.
  function checkCode(code) {
    for (var i = 0; i < code.length; i++) {
      var c = code[i];
      if (LOOKALIKE[c]) return "Room codes never contain " + LOOKALIKE[c] + " (they look alike): check the letter " + c + ".";
      if (ALPHABET.indexOf(c) < 0) return "Room codes use only letters and digits; \"" + c + "\" is not one.";
    }
    if (code.length < 4) return "A room code has 4 or 5 characters.";
    if (code.length > 5) return "A room code has at most 5 characters.";
    return "";
  }

  // ApiError is an error answer: code, message in words, and the wait for rate_limited.
  function ApiError(status, code, message, retryAfter) {
    this.status = status;
    this.code = code;
    this.message = message;
    this.retryAfter = retryAfter;
  }

  // words turns an error into a sentence a player understands.
  function words(err, room) {
    if (!(err instanceof ApiError)) return "Cannot reach the game service. Check your connection and try again.";
    switch (err.code) {
      case "room_full": return "Room " + (room || "") + " is full. Ask for another code, or create a room.";
      case "room_not_found": return "There is no room " + (room || "with that code") + ". Check the code: the room may have ended.";
      case "rate_limited": return "Too many tries. Please wait " + (err.retryAfter || 60) + " seconds and try again.";
      case "no_capacity": return "Every game server is busy right now. Try again in a few seconds.";
      case "unknown_game": return "This game is not available any more.";
      case "unauthorized": return "Your session has expired. Try again.";
      case "ticket_invalid": return "Your seat expired before the game connected. Join again.";
      case "origin_forbidden": return "This page may not connect to the game service (origin not allowed).";
      case "server_unavailable": return "The room's game server is not reachable: the room may have ended.";
      case "unavailable": return "The game service is busy or restarting. Try again in a moment.";
      default: return err.message || "Something went wrong (" + err.code + ").";
    }
  }

  function call(method, path, body, token) {
    return ready.then(function () {
      var headers = {};
      if (body) headers["Content-Type"] = "application/json";
      if (token) headers.Authorization = "Bearer " + token;
      return fetch(api + path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined, cache: "no-store" });
    }).then(function (r) {
      return r.text().then(function (t) {
        var b = null;
        try { b = JSON.parse(t); } catch (e) { /* not JSON */ }
        if (r.ok && b) return b;
        var e = (b && b.error) || {};
        throw new ApiError(r.status, e.code || "http_" + r.status, e.message || t, parseInt(r.headers.get("Retry-After") || "0", 10));
      });
    });
  }

  function games() { return call("GET", "/games").then(function (b) { return b.games; }); }

  // session returns the tab's player (token, player_id, name), making one for name if needed.
  function session(name) {
    var s = null;
    try { s = JSON.parse(sessionStorage.getItem("usher.session") || "null"); } catch (e) { s = null; }
    var fresh = s && new Date(s.expires_at).getTime() - Date.now() > 60000;
    if (fresh && (!name || s.name === name)) return Promise.resolve(s);
    return call("POST", "/request_token", name ? { name: name } : {}).then(function (t) {
      sessionStorage.setItem("usher.session", JSON.stringify(t));
      return t;
    });
  }

  // join creates a room ({game}), joins one by code ({game, room}) or quick matches
  // ({game, quick: true}); an expired token is renewed once.
  function join(name, body) {
    return session(name).then(function (s) {
      return call("POST", "/join", body, s.token).catch(function (e) {
        if (e instanceof ApiError && e.code === "unauthorized") {
          sessionStorage.removeItem("usher.session");
          return session(name).then(function (s2) { return call("POST", "/join", body, s2.token); });
        }
        throw e;
      }).then(function (j) { j.player_id = s.player_id; j.name = s.name; return j; });
    });
  }

  // connect opens the WebSocket of a join's connect_url.
  function connect(joined) {
    return ready.then(function () {
      var base = api || location.origin;
      var u = new URL(joined.connect_url, base);
      u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
      return new WebSocket(u.toString());
    });
  }

  // closeWords explains a WebSocket close code.
  function closeWords(code, reason) {
    var known = {
      1000: "You left the room.", 1001: "The game server is going away (it stopped or Usher is restarting).",
      1006: "The connection was lost.", 1008: "The connection was closed for sending too much.",
      1009: "A message was too large.", 1011: "The game server failed.",
      4001: "The room is full.", 4002: "You connected again from somewhere else.",
      4003: "You joined another room.", 4006: "An operator closed this room.", 4005: "An operator disconnected you."
    };
    return (known[code] || "The connection closed.") + " (code " + code + (reason ? ": " + reason : "") + ")";
  }

  return { ready: ready, checkCode: checkCode, words: words, games: games, session: session, join: join,
    connect: connect, closeWords: closeWords, ApiError: ApiError };
})();
