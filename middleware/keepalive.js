(function () {
  'use strict';
  // Keeps a form's session alive while the person is active on the page (see
  // middleware.KeepaliveScript). Times are counted on this page's own clock from each
  // answer, so a wrong clock on the device does not matter.
  var cfg = JSON.parse(document.getElementById('wr-keepalive-config').textContent);
  if (cfg.expiresIn < 0) return; // not admitted through the room
  var now = function () { return performance.now(); };
  var t0 = now(), span = Math.max(cfg.expiresIn, 1) * 1000;
  var expiresAt = t0 + cfg.expiresIn * 1000, renewAt = t0 + cfg.renewIn * 1000;
  var active = true, fixed = false, busy = false, lastActivity = t0;
  var warnBefore = Math.min(120000, span / 3);

  function each(attr, f) { document.querySelectorAll('[' + attr + ']').forEach(f); }
  function show() {
    var left = Math.max(0, expiresAt - now());
    if (left <= 0) active = false;
    var s = Math.ceil(left / 1000), text = Math.floor(s / 60) + ':' + ('0' + (s % 60)).slice(-2);
    each('data-wr-session-left', function (el) { if (el.textContent !== text) el.textContent = text; });
    each('data-wr-session-warning', function (el) { el.hidden = !(active && left <= warnBefore); });
    each('data-wr-session-ended', function (el) { el.hidden = active; });
    each('data-wr-session-fixed', function (el) { el.hidden = !fixed; });
  }
  function ping() {
    if (busy) return;
    busy = true;
    var due = now() >= renewAt;
    fetch(cfg.url, { method: 'POST', credentials: 'same-origin', cache: 'no-store', headers: { 'Accept': 'application/json' } })
      .then(function (res) { return res.json(); })
      .then(function (a) {
        var t = now();
        if (!a.active) { active = false; expiresAt = t; }
        else if (a.expiresInSeconds != null) {
          // A renewal was due and the pass is as it was (its renewal still due): the room
          // does not renew this session, so stop asking.
          if (due && a.renewInSeconds === 0) fixed = true;
          active = true; expiresAt = t + a.expiresInSeconds * 1000; renewAt = t + a.renewInSeconds * 1000;
        }
        show();
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  var last = 0;
  function activity() {
    var t = now();
    lastActivity = t;
    if (t - last < 1000) return; // at most one check a second
    last = t;
    if (active && !fixed && t >= renewAt) ping();
  }
  ['input', 'change', 'keydown', 'pointerdown', 'scroll', 'focusin'].forEach(function (type) {
    document.addEventListener(type, activity, { capture: true, passive: true });
  });
  each('data-wr-keep-session', function (el) {
    el.addEventListener('click', function (e) { e.preventDefault(); lastActivity = now(); ping(); });
  });
  document.addEventListener('visibilitychange', function () { if (!document.hidden) { show(); if (!active) ping(); } });
  setInterval(function () {
    show();
    // Someone active in the last minute, near the end: renew before it is too late.
    var t = now();
    if (active && !fixed && t >= renewAt && t - lastActivity < 60000 && expiresAt - t < warnBefore) ping();
  }, 1000);
  show();
})();
