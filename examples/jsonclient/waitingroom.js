/*
 * waitingroom.js: a client for single-page and mobile apps behind a waiting room. It
 * polls the room's JSON status the way the hosted rooms' clients do: each request asks
 * with Accept: application/json, and the answer is one of these.
 *
 *   - The object cfWaitingRoom with inWaitingRoom true: the visitor waits (onWaiting), and
 *     the next request goes after that answer's refreshIntervalMilliseconds (this room's,
 *     to the millisecond: a slot may be due sooner than a whole second) or, without it,
 *     its refreshIntervalSeconds.
 *   - The same with isRejectQueue true (HTTP 503), or without a refresh interval: the room
 *     is closed, it admits nobody (onClosed); polling stops. A room sold out answers so
 *     too, with soldOut true: every place is taken, and it gave this visitor none.
 *   - A waiting answer may carry message (what the site tells the queue, in the visitor's
 *     language) and slotsRemaining (also as slotsLeft: the places left, 0 when none).
 *   - The same with outage true (HTTP 503): the room cannot answer now (onError); the next
 *     request goes after that answer's refresh interval.
 *   - A 502, 503 or 504 that is not JSON, a proxy's error page, or no answer at all (a
 *     network error): onError; the next request goes after the last refresh interval the
 *     room gave (20 s before it gave one).
 *   - Anything else is the app's own answer: the visitor is in (onAdmitted); polling stops.
 *
 * No modules, no dependencies: load it with a <script> tag.
 *
 *   var stop = WaitingRoom.poll('/api/checkout', {
 *     onWaiting: function (s) {   // s is cfWaitingRoom, in the hosted rooms' field names
 *       show(s.usersAhead, s.waitTimeKnown ? s.waitTimeFormatted : 'unknown', s.queueIsFull);
 *     },
 *     onAdmitted: function (response) { proceed(response); }, // the app's own answer
 *     onClosed: function (s) { showClosed(); },   // the room admits nobody; polling stops
 *     onError: function (err, s) { showOffline(); }  // network, outage or proxy; polling goes on
 *   });
 *
 * The session cookie is the browser's (credentials: 'same-origin'); a mobile app keeps the
 * room's cookie between requests itself.
 */
(function (global) {
  'use strict';

  function poll(url, handlers, init) {
    // every: the room's usual refresh interval in ms, for trying again after an error.
    var timer = 0, stopped = false, every = 20000;
    function call(name, a, b) { if (handlers && handlers[name]) handlers[name](a, b); }
    function schedule(ms) {
      if (!stopped) timer = setTimeout(once, Math.max(100, ms));
    }
    function interval(s) { return s.refreshIntervalMilliseconds || s.refreshIntervalSeconds * 1000 || 0; }
    function once() {
      var opts = Object.assign({ credentials: 'same-origin', cache: 'no-store' }, init);
      opts.headers = Object.assign({ 'Accept': 'application/json' }, init && init.headers);
      fetch(url, opts).then(function (res) {
        var json = (res.headers.get('Content-Type') || '').indexOf('application/json') >= 0;
        if (!json) {
          if (res.status === 502 || res.status === 503 || res.status === 504) {
            // A proxy's error page in front of the room: neither the room nor the app.
            call('onError', new Error('unavailable (' + res.status + ')'));
            return schedule(every);
          }
          return call('onAdmitted', res);
        }
        return res.clone().json().then(function (body) {
          var s = body && body.cfWaitingRoom;
          if (!s || !s.inWaitingRoom) return call('onAdmitted', res);
          if (s.outage) {
            // The room cannot answer now; it says when to try again.
            call('onError', new Error('waiting room unavailable (' + res.status + ')'), s);
            return schedule(interval(s) || every);
          }
          if (s.isRejectQueue) return call('onClosed', s, res); // closed: HTTP 503, no refresh
          var next = interval(s);
          if (next > 0) {
            every = s.refreshIntervalSeconds * 1000 || next;
            call('onWaiting', s, res);
            return schedule(next);
          }
          call('onClosed', s, res);
        });
      }).catch(function (err) {
        call('onError', err);
        schedule(every);
      });
    }
    once();
    return function stop() { stopped = true; clearTimeout(timer); };
  }

  global.WaitingRoom = { poll: poll };
})(this);
