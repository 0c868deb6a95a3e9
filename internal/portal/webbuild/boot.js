// Starts a Godot 4 web build (game.pck) with the Godot web engine beside it (index.js,
// index.wasm), in the whole window, as a web export's page would. What the game prints goes to
// the console.
(function () {
  "use strict";
  var status = document.getElementById("status");
  var canvas = document.getElementById("canvas");
  if (typeof Engine === "undefined") {
    status.textContent = "The game engine could not be loaded.";
    return;
  }
  var engine = new Engine({
    executable: "index",
    mainPack: "game.pck",
    canvas: canvas,
    canvasResizePolicy: 2,
    onPrint: function () { console.log(Array.prototype.join.call(arguments, " ")); },
    onPrintError: function () { console.warn(Array.prototype.join.call(arguments, " ")); },
    onProgress: function (current, total) {
      if (total > 0) status.textContent = "Loading the game… " + Math.round((100 * current) / total) + " %";
    }
  });
  engine.startGame().then(function () {
    status.remove();
    canvas.focus();
  }, function (err) {
    status.textContent = "This browser could not start the game: " + err;
  });
})();
