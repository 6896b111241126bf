/*
 * waitingroom.js: a client for single-page and mobile apps behind a waiting room. It
 * polls the room's JSON status the way the hosted rooms' clients do: each request asks
 * with Accept: application/json; while the answer is the object cfWaitingRoom with
 * inWaitingRoom true, the visitor waits and the next request goes after that answer's
 * refreshIntervalSeconds; any other answer is the app's own, so the visitor is in.
 * No modules, no dependencies: load it with a <script> tag.
 *
 *   var stop = WaitingRoom.poll('/api/checkout', {
 *     onWaiting: function (s) {   // s is cfWaitingRoom, in the hosted rooms' field names
 *       show(s.usersAhead, s.waitTimeKnown ? s.waitTimeFormatted : 'unknown', s.queueIsFull);
 *     },
 *     onAdmitted: function (response) { proceed(response); }, // the app's own answer
 *     onClosed: function (s) { showClosed(); },   // the room admits nobody; polling stops
 *     onError: function (err) { showOffline(); }  // network or outage; polling goes on
 *   });
 *
 * The session cookie is the browser's (credentials: 'same-origin'); a mobile app keeps the
 * room's cookie between requests itself.
 */
(function (global) {
  'use strict';

  function poll(url, handlers, init) {
    var timer = 0, stopped = false, every = 20;
    function call(name, a, b) { if (handlers && handlers[name]) handlers[name](a, b); }
    function schedule(seconds) {
      if (!stopped) timer = setTimeout(once, Math.max(1, seconds) * 1000);
    }
    function once() {
      var opts = Object.assign({ credentials: 'same-origin', cache: 'no-store' }, init);
      opts.headers = Object.assign({ 'Accept': 'application/json' }, init && init.headers);
      fetch(url, opts).then(function (res) {
        var json = (res.headers.get('Content-Type') || '').indexOf('application/json') >= 0;
        if (!json) return call('onAdmitted', res);
        return res.clone().json().then(function (body) {
          var s = body && body.cfWaitingRoom;
          if (!s || !s.inWaitingRoom) return call('onAdmitted', res);
          if (s.outage || res.status >= 500) {
            // The room cannot answer now; it says when to try again.
            call('onError', new Error('waiting room unavailable (' + res.status + ')'), s);
            return schedule(s.refreshIntervalSeconds || every);
          }
          if (s.refreshIntervalSeconds > 0) {
            every = s.refreshIntervalSeconds;
            call('onWaiting', s, res);
            return schedule(every);
          }
          call('onClosed', s, res); // reject: no refresh
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
