// The rotating pass on the holder's page: the shown text is the signed pass + "*" + an
// RFC 6238 TOTP (HMAC-SHA256, 30 s step, 8 digits, T0 = 0) computed here with WebCrypto
// from the per-pass secret (HKDF of the site key, derived on the server; the site key
// itself never reaches the page). No server round trip: the code changes offline too.
"use strict";
(function () {
  var STEP_S = 30, DIGITS = 8;
  var box = document.getElementById("qr");
  if (!box || !box.dataset.secret) return;
  var staticText = box.dataset.pass;
  var secret = Uint8Array.from(atob(box.dataset.secret), function (c) { return c.charCodeAt(0); });
  var keyPromise = crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" },
                                           false, ["sign"]);

  function counterBytes(step) {
    var buf = new Uint8Array(8), n = step;
    for (var i = 7; i >= 0; i--) { buf[i] = n % 256; n = Math.floor(n / 256); }
    return buf;
  }

  async function codeAt(epochS) {
    var mac = new Uint8Array(await crypto.subtle.sign("HMAC", await keyPromise,
                                                      counterBytes(Math.floor(epochS / STEP_S))));
    var off = mac[mac.length - 1] & 0x0f;   // RFC 4226 dynamic truncation
    var bin = ((mac[off] & 0x7f) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3];
    return String(bin % Math.pow(10, DIGITS)).padStart(DIGITS, "0");
  }

  function draw(text) {
    var qr = qrcode(0, "Q");          // smallest version that holds it, ECC Q as issued
    qr.addData(text, "Alphanumeric"); // GP1 + Base45 + "*" + digits: all alphanumeric
    qr.make();
    box.innerHTML = qr.createSvgTag({ cellSize: 10, margin: 4, scalable: true });
    box.dataset.shown = text.slice(-8);  // the current code, for the countdown and tests
  }

  var lastStep = null;
  async function tick() {
    var now = Date.now() / 1000, step = Math.floor(now / STEP_S);
    if (step !== lastStep) {
      lastStep = step;
      draw(staticText + "*" + await codeAt(now));
    }
    var left = document.getElementById("left");
    if (left) left.textContent = String(STEP_S - Math.floor(now % STEP_S));
  }
  tick();
  setInterval(tick, 1000);
})();
