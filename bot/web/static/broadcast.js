/* The live SMS count under a broadcast's message box.
 *
 * A copy of bot/channels/render.py (to_gsm7, is_gsm7, sms_segments) so the count changes as
 * the coordinator types. The server's count on the preview page is the one that is charged;
 * tests/web/test_broadcast_pages.py checks that both count the same texts alike.
 */
(function () {
  "use strict";

  var BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXT = "^{}\\[~]|€\f";
  var PLAIN = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u201c": "\"",
    "\u201d": "\"", "\u201e": "\"", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2026": "...", "\u00a0": " ", "\u2022": "-", "\u2010": "-", "\u2011": "-",
    "\u00b4": "'", "\t": " "
  };

  function toGsm7(text) {
    return Array.from(text).map(function (ch) {
      return Object.prototype.hasOwnProperty.call(PLAIN, ch) ? PLAIN[ch] : ch;
    }).join("");
  }

  function isGsm7(chars) {
    return chars.every(function (ch) { return BASIC.indexOf(ch) >= 0 || EXT.indexOf(ch) >= 0; });
  }

  function segments(chars) {
    var gsm = isGsm7(chars);
    var sizes = chars.map(function (ch) {
      if (gsm) { return EXT.indexOf(ch) >= 0 ? 2 : 1; }
      return ch.codePointAt(0) > 0xffff ? 2 : 1;
    });
    var single = gsm ? 160 : 70;
    var multi = gsm ? 153 : 67;
    var total = sizes.reduce(function (a, b) { return a + b; }, 0);
    if (total <= single) { return 1; }
    var count = 1;
    var used = 0;
    sizes.forEach(function (size) {
      if (used + size > multi) { count += 1; used = 0; }
      used += size;
    });
    return count;
  }

  // As the server cleans it: line ends as \n, spaces at line ends and at both ends dropped.
  function cleaned(text) {
    return text.replace(/\r\n/g, "\n").split("\n").map(function (line) {
      return line.replace(/\s+$/, "");
    }).join("\n").trim();
  }

  function hint(text) {
    var shown = Array.from(toGsm7(cleaned(text)));
    if (shown.length === 0 || cleaned(text) === "") { return "0 SMS segments (0 characters)"; }
    var n = segments(shown);
    return n + " SMS segment" + (n === 1 ? "" : "s") + " (" + shown.length + " character" +
      (shown.length === 1 ? "" : "s") + ")";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var out = document.getElementById("text-count");
    var box = out && document.getElementById(out.getAttribute("data-for"));
    if (!box) { return; }
    var update = function () { out.textContent = hint(box.value); };
    box.addEventListener("input", update);
    update();
  });
}());
