(function () {
  'use strict';
  // The built-in pages' script: it polls the JSON status after the refresh interval of the
  // last answer (refreshIntervalMilliseconds), updates the page in place, tells screen readers
  // what changed, and moves on when the visitor is let in. Without it the page reloads itself
  // (a meta refresh in noscript).
  var cfg = JSON.parse(document.getElementById('wr-config').textContent);
  var byId = function (id) { return document.getElementById(id); };
  var live = byId('wr-announce'), alertBox = byId('wr-alert');
  var title = document.title, timer = 0, failures = 0, lastSaid = 0, gone = false;
  var fields = ['heading', 'intro', 'opens', 'aheadLabel', 'ahead', 'wait', 'around', 'progressText',
    'note', 'slots', 'keep', 'joined', 'updated', 'message'];
  var shown = key(current()), shownMessage = byId('wr-message').textContent;

  function current() {
    var t = {};
    fields.forEach(function (f) { var el = byId('wr-' + f); t[f] = el ? el.textContent : ''; });
    return t;
  }
  function key(t) { return [t.heading, t.ahead, t.wait, t.opens, t.slots, t.note].join('|'); }

  // say puts text in the live region: a string, or parts, each a string or {text, lang}
  // (the room's message may be in another language than the page: a screen reader then
  // reads it in its own voice).
  function say(text) {
    var parts = typeof text === 'string' ? [text] : text;
    parts = parts.filter(function (p) { return p && (p.text || typeof p === 'string'); });
    if (!parts.length) return;
    lastSaid = Date.now();
    // Emptied first, so that the same sentence said again is announced again.
    live.textContent = '';
    setTimeout(function () {
      live.textContent = '';
      parts.forEach(function (p, i) {
        if (i > 0) live.appendChild(document.createTextNode(' '));
        if (typeof p === 'string') { live.appendChild(document.createTextNode(p)); return; }
        var span = document.createElement('span');
        span.textContent = p.text;
        if (p.lang) span.setAttribute('lang', p.lang);
        live.appendChild(span);
      });
    }, 150);
  }
  function showAlert(text) {
    alertBox.textContent = text;
    alertBox.hidden = !text;
  }

  function apply(t) {
    // A new state (a new heading, being next, or a new note: paused, drawn, no place left)
    // is said at once.
    var note = byId('wr-note');
    var changed = t.heading !== byId('wr-heading').textContent || !!t.aheadWord !== byId('wr-ahead').classList.contains('word') ||
      (note && (t.note || '') !== note.textContent);
    fields.forEach(function (f) {
      var el = byId('wr-' + f), v = t[f] || '';
      if (el && el.textContent !== v) el.textContent = v;
    });
    document.querySelectorAll('[data-wr-if]').forEach(function (el) {
      el.hidden = !t[el.getAttribute('data-wr-if')];
    });
    byId('wr-ahead').classList.toggle('word', !!t.aheadWord);
    // The room's message may be in another language than the page: say which.
    var me = byId('wr-message');
    if (t.messageLang) me.setAttribute('lang', t.messageLang); else me.removeAttribute('lang');
    var bar = byId('wr-bar');
    if (bar && t.progress >= 0) bar.value = t.progress;
    if (t.title) { title = t.title; document.title = title; }
    var k = key(t), message = t.message || '', said = [];
    // Only changes are announced, and a new count at most every 30 s.
    if (k !== shown && (changed || Date.now() - lastSaid > 30000)) {
      shown = k;
      said.push(t.announce);
    }
    // The site's message once, when it changes.
    if (message !== shownMessage) {
      shownMessage = message;
      if (message) said.push({ text: t.announceMessage || message, lang: t.messageLang });
    }
    say(said);
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, Math.max(100, ms));
  }

  function turn() {
    if (gone) return;
    gone = true;
    clearTimeout(timer);
    document.title = cfg.turnTitle + ' – ' + title;
    showAlert(cfg.turn);
    say(cfg.turn);
    var go = function () { location.replace(cfg.next); };
    if (document.hidden) {
      // The changed title tells someone on another tab; the page moves on when they look,
      // or after 30 s at the latest, while the session that just began is young.
      document.addEventListener('visibilitychange', function () { if (!document.hidden) go(); });
      setTimeout(go, 30000);
    } else {
      setTimeout(go, 1500);
    }
  }

  function lost() {
    failures++;
    if (failures === 1) { showAlert(cfg.reconnecting); say(cfg.reconnecting); }
    // Again after the refresh, then twice and three times it; a minute at most (cfg.refresh is in ms).
    schedule(Math.min(cfg.refresh * Math.min(failures, 3), 60000));
  }

  function poll() {
    fetch(cfg.poll, {
      headers: { 'Accept': 'application/json', 'Waiting-Room-Page': 'texts' },
      credentials: 'same-origin', cache: 'no-store', redirect: 'manual'
    }).then(function (res) {
      var json = (res.headers.get('Content-Type') || '').indexOf('application/json') >= 0;
      if (res.type === 'opaqueredirect') return turn();
      if (!json) return res.status >= 500 ? lost() : turn();
      return res.json().then(function (a) {
        if (!a || !a.cfWaitingRoom) return res.status >= 500 ? lost() : turn();
        if (failures) { failures = 0; showAlert(''); }
        if (a.waitingRoomPage) apply(a.waitingRoomPage);
        // The room may ask for the next poll sooner than a whole second: its slot is due.
        var w = a.cfWaitingRoom, next = w.refreshIntervalMilliseconds || w.refreshIntervalSeconds * 1000;
        if (next > 0) schedule(next);
      });
    }).catch(lost);
  }

  if (cfg.needsCookies && !navigator.cookieEnabled) {
    // Every poll would take a new place at the back: say why instead.
    var notice = byId('wr-notice');
    if (notice && notice.getAttribute('data-cookies-off')) notice.textContent = notice.getAttribute('data-cookies-off');
    showAlert(cfg.cookiesOff);
    return;
  }
  if (cfg.refresh > 0) schedule(cfg.refresh);
  if (cfg.reopen > 0 && cfg.reopen < 86400) setTimeout(function () { location.replace(cfg.next); }, cfg.reopen * 1000);
})();
