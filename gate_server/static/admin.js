// Live events: every 5 s, replace the table body with the server-rendered rows.
"use strict";
(function () {
  var body = document.getElementById("events");
  if (!body) { return; }
  function refresh() {
    fetch(body.dataset.refresh, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) {
        // Signed out meanwhile (expired session): the rows request was sent to the login page.
        if (r.redirected) { window.location.reload(); throw new Error("signed out"); }
        if (r.ok) { return r.text(); }
        throw new Error(String(r.status));
      })
      .then(function (html) { body.innerHTML = html; })
      .catch(function () { /* keep the last rows; try again next round */ });
  }
  setInterval(refresh, 5000);
}());
