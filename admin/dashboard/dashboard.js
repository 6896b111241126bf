// The dashboard's live updates. The pages are whole without this script: it only keeps
// their figures and what the room tells its queue current (every second), redraws the
// room's chart (every 15 seconds) and shows the forecast of the settings form as the
// operator types. The server formats every figure; the script copies text into the
// elements named by data-k, and never builds HTML of its own (the chart, the forecast and
// the room's message come as fragments from the server).
(function () {
  'use strict';

  var status = document.getElementById('live-status');
  var table = document.getElementById('rooms');
  var room = document.getElementById('room');
  var every = 1000;

  function getJSON(url) {
    return fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'}, cache: 'no-store'})
      .then(function (r) {
        if (r.status === 401) {
          var e = new Error('logged out');
          e.loggedOut = true;
          throw e;
        }
        return r.json().then(function (body) { return {status: r.status, body: body}; });
      });
  }

  function say(text, state) {
    if (!status) {
      return;
    }
    status.className = 'live ' + state;
    status.textContent = text;
  }

  function loggedOut() {
    if (!status) {
      return;
    }
    status.className = 'live off';
    status.textContent = 'Your session has ended. ';
    var a = document.createElement('a');
    a.href = '/dashboard/login?next=' + encodeURIComponent(location.pathname + location.search);
    a.textContent = 'Log in again';
    status.appendChild(a);
  }

  // fill copies the row's cells into the elements under el named by data-k.
  function fill(el, row) {
    var cells = row.cells || {};
    el.querySelectorAll('[data-k]').forEach(function (c) {
      var k = c.getAttribute('data-k');
      if (k in cells && c.textContent !== cells[k]) {
        c.textContent = cells[k];
      }
    });
    if (row.state) {
      el.setAttribute('data-state', row.state);
    }
  }

  // poll calls load every second while the page is visible, one request at a time.
  function poll(load) {
    var timer = null;
    function tick() {
      timer = null;
      if (document.hidden) {
        return; // resumed by visibilitychange
      }
      load().then(function () {
        timer = setTimeout(tick, every);
      }, function (e) {
        if (e && e.loggedOut) {
          loggedOut();
          return;
        }
        say('Not updating: the dashboard cannot be reached. Trying again…', 'off');
        timer = setTimeout(tick, 3 * every);
      });
    }
    document.addEventListener('visibilitychange', function () {
      if (!document.hidden && timer === null) {
        tick();
      }
    });
    timer = setTimeout(tick, every);
  }

  // The overview: rows are updated in place, added from the row template, moved into the
  // server's order and removed, so that focus and selection survive the updates.
  if (table && status && status.getAttribute('data-live')) {
    var url = status.getAttribute('data-live');
    var tbody = table.tBodies[0];
    var proto = document.getElementById('row-template');
    poll(function () {
      return getJSON(url).then(function (res) {
        var data = res.body;
        var seen = {};
        var byID = {};
        Array.prototype.forEach.call(tbody.rows, function (tr) { byID[tr.getAttribute('data-id')] = tr; });
        data.rows.forEach(function (row, i) {
          var tr = byID[row.id];
          if (!tr) {
            tr = proto.content.firstElementChild.cloneNode(true);
            tr.setAttribute('data-id', row.id);
            var a = tr.querySelector('th a');
            a.href = row.href;
            a.textContent = row.id;
          }
          seen[row.id] = true;
          fill(tr, row);
          if (tbody.rows[i] !== tr) {
            tbody.insertBefore(tr, tbody.rows[i] || null);
          }
        });
        Object.keys(byID).forEach(function (id) {
          if (!seen[id]) {
            tbody.removeChild(byID[id]);
          }
        });
        var total = document.querySelector('[data-total]');
        if (total) {
          total.textContent = String(data.total);
        }
        var sum = document.querySelector('[data-sum=waiting]');
        if (sum) {
          sum.textContent = data.waiting;
        }
        say('Live: figures of ' + data.at + '.', 'on');
      });
    });
  }

  // The room page.
  if (room && room.getAttribute('data-live')) {
    var form = document.getElementById('settings-form');
    // Each form saved against a version says when the settings moved past the one it has.
    var versioned = Array.prototype.map.call(document.querySelectorAll('form[data-version]'), function (f) {
      return {loaded: f.getAttribute('data-version'), notice: f.querySelector('[data-stale]')};
    });
    var said = document.getElementById('said');
    poll(function () {
      return getJSON(room.getAttribute('data-live')).then(function (res) {
        var row = res.body;
        row.cells.reason = row.reason || '';
        fill(document.body, row);
        room.setAttribute('data-state', row.state);
        versioned.forEach(function (v) {
          if (v.notice) {
            v.notice.hidden = String(row.version) === v.loaded;
          }
        });
        // What the queue is told changes with the settings: put in only when it did.
        if (said && typeof row.said_html === 'string') {
          var next = document.createElement('template');
          next.innerHTML = row.said_html; // the server's fragment, escaped by html/template
          if (next.innerHTML !== said.innerHTML) {
            said.innerHTML = next.innerHTML;
          }
        }
        say('Live: figures of ' + row.at + '.', 'on');
      });
    });

    var chart = document.getElementById('chart');
    if (chart && chart.getAttribute('data-chart')) {
      setInterval(function () {
        if (document.hidden) {
          return;
        }
        fetch(chart.getAttribute('data-chart'), {credentials: 'same-origin', cache: 'no-store'}).then(function (r) {
          if (r.ok) {
            return r.text().then(function (html) {
              var open = chart.querySelector('details[open]') !== null;
              chart.innerHTML = html; // the server's fragment, escaped by html/template
              var d = chart.querySelector('details');
              if (d && open) {
                d.open = true;
              }
            });
          }
        }, function () {});
      }, 15000);
    }

    // The forecast follows the form as the operator types, 300 ms after the last key.
    var out = document.getElementById('forecast');
    if (form && out && form.getAttribute('data-forecast')) {
      var preview = document.getElementById('preview');
      if (preview) {
        preview.hidden = true; // the forecast below follows the form by itself
      }
      var seq = 0;
      var wait = null;
      var update = function () {
        var q = new URLSearchParams();
        form.querySelectorAll('input[type=number]').forEach(function (i) { q.set(i.name, i.value); });
        var mine = ++seq;
        out.setAttribute('aria-busy', 'true');
        getJSON(form.getAttribute('data-forecast') + '?' + q.toString()).then(function (res) {
          if (mine !== seq) {
            return; // a later one is on its way
          }
          // Only a forecast that changed is put in: the region is live, and the same words
          // every 10 seconds would be read out again and again.
          var next = document.createElement('template');
          next.innerHTML = res.body.html; // the server's fragment, escaped by html/template
          if (next.innerHTML !== out.innerHTML) {
            out.innerHTML = next.innerHTML;
          }
          out.removeAttribute('aria-busy');
        }, function (e) {
          if (e && e.loggedOut) {
            loggedOut();
          }
          out.removeAttribute('aria-busy');
        });
      };
      form.addEventListener('input', function () {
        clearTimeout(wait);
        wait = setTimeout(update, 300);
      });
      // The queue moves: the forecast of the same values is taken again now and then.
      setInterval(function () {
        if (!document.hidden) {
          update();
        }
      }, 10000);
    }
  }
})();
