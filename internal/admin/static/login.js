// The sign-in page: a link printed by `usher dev` carries the token in the fragment
// (#token=…), which never reaches a server or a log; sign in with it and forget it.
(function () {
  "use strict";
  if (new URLSearchParams(location.search).has("refused")) {
    document.getElementById("refused").hidden = false;
  }
  var m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    history.replaceState(null, "", location.pathname);
    document.getElementById("token").value = decodeURIComponent(m[1]);
    document.getElementById("login").submit();
  }
})();
