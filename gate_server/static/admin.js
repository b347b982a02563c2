// Live tables (entrance events, occupancy): every 5 s, replace each table body marked
// data-refresh with the server-rendered rows, unless the user is typing inside it.
"use strict";
(function () {
  var bodies = Array.prototype.slice.call(document.querySelectorAll("tbody[data-refresh]"));
  if (!bodies.length) { return; }
  function refresh(body) {
    if (body.contains(document.activeElement)) { return; }  // a correction being typed
    fetch(body.dataset.refresh, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) {
        // Signed out meanwhile (expired session): the rows request was sent to the login page.
        if (r.redirected) { window.location.reload(); throw new Error("signed out"); }
        if (r.ok) { return r.text(); }
        throw new Error(String(r.status));
      })
      .then(function (html) {
        if (!body.contains(document.activeElement)) { body.innerHTML = html; }
      })
      .catch(function () { /* keep the last rows; try again next round */ });
  }
  setInterval(function () { bodies.forEach(refresh); }, 5000);
}());
