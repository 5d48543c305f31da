(function () {
  'use strict';
  var TOKEN_KEY = 'iprep-admin-token';
  var POLL_MS = 1000;
  var DECISIONS_EVERY = 5; // polls between two reloads of the decisions table
  var token = sessionStorage.getItem(TOKEN_KEY) || '';
  var waitingForToken = false;
  var polls = 0;
  var numberFormat = new Intl.NumberFormat('en');
  var rateFormat = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });

  function $(id) {
    return document.getElementById(id);
  }

  /** An element with text or child nodes; text is always set as text. */
  function el(tag, options, children) {
    var node = document.createElement(tag);
    options = options || {};
    if (options.className) node.className = options.className;
    if (options.text !== undefined) node.textContent = String(options.text);
    if (options.title) node.title = options.title;
    if (options.label) node.setAttribute('aria-label', options.label);
    (children || []).forEach(function (child) {
      node.appendChild(child);
    });
    return node;
  }

  function cell(content, className) {
    if (content instanceof Node) return el('td', { className: className }, [content]);
    return el('td', { className: className, text: content === null || content === undefined ? '' : content });
  }

  function row(cells) {
    return el('tr', {}, cells);
  }

  function rowHeader(text) {
    var th = el('th', { text: text });
    th.scope = 'row';
    return th;
  }

  function fillTable(id, rows, emptyText, columns) {
    var body = $(id).tBodies[0];
    if (rows.length === 0) {
      var empty = el('td', { className: 'muted', text: emptyText });
      empty.colSpan = columns;
      rows = [row([empty])];
    }
    body.replaceChildren.apply(body, rows);
  }

  function bar(share, color) {
    var fill = el('span');
    fill.style.width = (share * 100).toFixed(1) + '%';
    if (color) fill.style.background = color;
    return el('div', { className: 'bar', title: (share * 100).toFixed(1) + '%' }, [fill]);
  }

  /** A value after its muted name: "category hijacked". */
  function labelled(name, value) {
    return el('span', {}, [el('span', { className: 'muted', text: name + ' ' }), el('strong', { text: value })]);
  }

  function actionBadge(action) {
    return el('span', { className: 'action ' + action, text: action });
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return 'never';
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + ' s';
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + ' min ' + (seconds % 60) + ' s';
    var hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + ' h ' + (minutes % 60) + ' min';
    return Math.floor(hours / 24) + ' d ' + (hours % 24) + ' h';
  }

  // " · in sync 0.4 s ago, last change applied 3 ms after its write, 2 writes queued": what a shared store adds.
  function storeSync(st) {
    var parts = [];
    if (st.syncAgeMs !== undefined)
      parts.push('in sync ' + (st.syncAgeMs < 10000 ? (st.syncAgeMs / 1000).toFixed(1) + ' s' : duration(st.syncAgeMs / 1000)) + ' ago');
    if (st.changeLagMs !== undefined) parts.push('last change applied ' + numberFormat.format(Math.round(st.changeLagMs)) + ' ms after its write');
    if (st.pendingWrites) parts.push(numberFormat.format(st.pendingWrites) + ' writes queued');
    if (st.droppedWrites) parts.push(numberFormat.format(st.droppedWrites) + ' dropped');
    return parts.length === 0 ? '' : ' \u00b7 ' + parts.join(', ');
  }

  function seconds(value) {
    if (value === null || value === undefined) return '\u2013';
    if (value < 0.001) return rateFormat.format(value * 1e6) + ' \u00b5s';
    if (value < 1) return rateFormat.format(value * 1e3) + ' ms';
    return rateFormat.format(value) + ' s';
  }

  /** Calls the admin API; resolves with the parsed body, rejects with the server's error message. */
  function api(path, options) {
    options = options || {};
    var headers = {};
    if (token) headers.Authorization = 'Bearer ' + token;
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(path, {
      method: options.method || 'GET',
      headers: headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: 'no-store',
    }).then(function (response) {
      if (response.status === 401) {
        askForToken();
        throw new Error('the admin token is missing or wrong');
      }
      if (response.status === 204) return null;
      return response.json().then(
        function (body) {
          if (response.ok) return body;
          var message = (body && body.error) || (body && body.errors && body.errors.join('; ')) || 'HTTP ' + response.status;
          throw new Error(message);
        },
        function () {
          throw new Error('HTTP ' + response.status + ' (not JSON)');
        },
      );
    });
  }

  function askForToken() {
    waitingForToken = true;
    $('token-help').textContent = token ? 'The token was refused; enter it again.' : 'This agent requires its admin token (kept in this tab only).';
    $('token-form').hidden = false;
    setConnection('offline', 'token needed');
    $('token').focus();
  }

  function setConnection(state, text) {
    var node = $('connection');
    if (node.textContent === text) return; // a live region: announce changes only
    node.className = state;
    node.textContent = text;
  }

  // -- Rendering the status snapshot ------------------------------------------------

  /** The figures cover every worker: say how many, and whether some did not answer (one process: nothing). */
  function workersText(s) {
    if (s.workers === 1 && s.workersMissing === 0) return '';
    var text = ' \u00b7 ' + s.workers + (s.workers === 1 ? ' worker' : ' workers');
    if (s.workersMissing === null) return text + ' (others did not answer)';
    return s.workersMissing > 0 ? text + ' (' + s.workersMissing + ' did not answer)' : text;
  }

  function renderStatus(s) {
    $('summary').textContent =
      'up ' + duration(s.uptimeSeconds) + workersText(s) + ' \u00b7 ' + s.lists.length + ' lists \u00b7 updated ' + new Date(s.time).toLocaleTimeString();
    $('rate').textContent = rateFormat.format(s.messages.perSecond);
    $('total').textContent = numberFormat.format(s.messages.total);
    $('latency').textContent =
      s.handler.meanSeconds === null
        ? '\u2013'
        : seconds(s.handler.meanSeconds) + ' / ' + (s.handler.p99Seconds === null ? '> 100 ms' : '\u2264 ' + seconds(s.handler.p99Seconds));
    $('agent').textContent = s.agent ? s.agent.connections + ' / ' + s.agent.inFlight : '\u2013';
    renderSparkline(s.messages.history);

    var scored =
      s.scores.reduce(function (sum, b) {
        return sum + b.count;
      }, 0) || 1;
    fillTable(
      'scores',
      s.scores.map(function (b) {
        var hue = Math.round(((b.from + b.to) / 2) * 1.2); // red (bad) to green (trusted)
        return row([rowHeader(b.from + '\u2013' + b.to), cell(numberFormat.format(b.count), 'num'), cell(bar(b.count / scored, 'hsl(' + hue + ' 70% 45%)'))]);
      }),
      'No messages yet',
      3,
    );

    var acted =
      s.actions.reduce(function (sum, a) {
        return sum + a.count;
      }, 0) || 1;
    fillTable(
      'actions',
      s.actions.map(function (a) {
        return row([cell(actionBadge(a.name)), cell(numberFormat.format(a.count), 'num'), cell(bar(a.count / acted, 'var(--' + a.name + ', var(--accent))'))]);
      }),
      'No messages yet',
      3,
    );

    fillTable(
      'categories',
      s.topCategories.map(function (c) {
        return row([cell(c.name, 'wrap'), cell(numberFormat.format(c.count), 'num')]);
      }),
      'No messages yet',
      2,
    );
    fillTable(
      'sources',
      s.topSources.map(function (c) {
        return row([cell(c.name, 'wrap'), cell(numberFormat.format(c.count), 'num')]);
      }),
      'No messages yet',
      2,
    );

    $('version').textContent = 'spoa ' + s.version;
    fillTable(
      'clients',
      s.topClients.map(function (c) {
        return row([cell(c.client, 'wrap'), cell(numberFormat.format(c.count), 'num')]);
      }),
      'No client in the window',
      2,
    );
    $('geo').hidden = !s.geo;
    if (s.geo) {
      fillTable(
        'countries',
        s.geo.countries.map(function (c) {
          return row([cell(c.value), cell(numberFormat.format(c.count), 'num')]);
        }),
        'No located message yet',
        2,
      );
      fillTable(
        'asns',
        s.geo.asns.map(function (c) {
          return row([cell(c.name ? c.value + ' ' + c.name : c.value, 'wrap'), cell(numberFormat.format(c.count), 'num')]);
        }),
        'No located message yet',
        2,
      );
      $('geo-databases').textContent = s.geo.databases
        .map(function (d) {
          return (
            d.kind +
            ': ' +
            numberFormat.format(d.networks) +
            ' networks' +
            (d.databaseType ? ' (' + d.databaseType + ')' : '') +
            (d.lastError ? ', last error: ' + d.lastError : '')
          );
        })
        .join('; ');
    }
    fillTable(
      'bans',
      s.latestBans.map(function (b) {
        return row([
          cell(duration((s.time - b.at) / 1000) + ' ago'),
          cell(b.client, 'wrap'),
          cell(actionBadge(b.action)),
          cell(numberFormat.format(b.count), 'num'),
          cell(numberFormat.format(b.offences), 'num'),
          cell(b.until > s.time ? 'in ' + duration((b.until - s.time) / 1000) : 'ended'),
        ]);
      }),
      'No ban since start',
      6,
    );

    fillTable(
      'lists',
      s.lists.map(function (l) {
        return row([
          cell(l.name),
          cell(l.format),
          cell(numberFormat.format(l.entries), 'num'),
          cell((l.ageSeconds === null ? 'never' : duration(l.ageSeconds) + ' ago') + (l.loading ? ', loading' : '')),
          cell(l.origin, 'wrap'),
          l.lastError === null ? cell('\u2013', 'muted') : cell(l.lastError, 'error wrap'),
        ]);
      }),
      'No lists configured',
      6,
    );

    var store = $('store');
    if (s.store) {
      store.replaceChildren(
        document.createTextNode(s.store.kind + ' '),
        el('span', { className: s.store.up ? 'up' : 'down', text: s.store.up ? 'up' : 'down' }),
        document.createTextNode((s.store.detail ? ' \u2013 ' + s.store.detail : '') + storeSync(s.store)),
      );
    } else {
      store.textContent = '\u2013';
    }
    $('decision-count').textContent = s.decisions === null ? '\u2013' : numberFormat.format(s.decisions);
    var last = s.reloads.last;
    $('reloads').textContent =
      s.reloads.ok +
      ' ok, ' +
      s.reloads.failed +
      ' failed' +
      (last ? ' \u00b7 last ' + (last.ok ? 'ok' : 'failed') + ' in ' + last.durationMs + ' ms, ' + duration((s.time - last.at) / 1000) + ' ago' : '');
    $('uptime').textContent = duration(s.uptimeSeconds);
  }

  function renderSparkline(history) {
    var width = 600,
      height = 90,
      top = 6;
    var peak = Math.max.apply(null, history.concat([1]));
    var step = width / (history.length - 1);
    var points = history.map(function (v, i) {
      return (i * step).toFixed(1) + ',' + (height - (v / peak) * (height - top)).toFixed(1);
    });
    $('spark-line').setAttribute('points', points.join(' '));
    $('spark-area').setAttribute('d', 'M0,' + height + ' L' + points.join(' L') + ' L' + width + ',' + height + ' Z');
    var now = history[history.length - 1];
    $('spark-peak').textContent = 'peak ' + numberFormat.format(Math.max.apply(null, history)) + '/s';
    $('sparkline-title').textContent = 'Messages per second over the last 60 seconds: peak ' + Math.max.apply(null, history) + ', last second ' + now;
  }

  function renderDecisions(decisions) {
    fillTable(
      'decisions',
      decisions.map(function (d) {
        var remove = el('button', { className: 'secondary', text: 'Remove', label: 'Remove decision ' + d.key });
        remove.type = 'button';
        remove.addEventListener('click', function () {
          remove.disabled = true;
          api('/decisions/' + encodeURIComponent(d.key), { method: 'DELETE' })
            .then(loadDecisions)
            .then(function () {
              say('decision-message', 'Removed ' + d.key);
            })
            .catch(function (error) {
              remove.disabled = false;
              say('decision-message', error.message, true);
            });
        });
        return row([
          cell(d.key, 'wrap'),
          cell(actionBadge(d.action)),
          cell(d.score, 'num'),
          cell(d.category),
          cell(d.reason, 'wrap'),
          cell(d.origin),
          cell(d.expiresAt === null ? 'never' : new Date(d.expiresAt).toLocaleString()),
          cell(remove),
        ]);
      }),
      'No decisions',
      8,
    );
  }

  function say(id, text, isError) {
    var node = $(id);
    node.textContent = text;
    node.className = isError ? 'error' : 'muted';
  }

  // -- Polling ----------------------------------------------------------------------

  function loadDecisions() {
    return api('/decisions').then(renderDecisions);
  }

  function poll() {
    if (waitingForToken) return;
    var loads = [api('/status.json').then(renderStatus)];
    if (polls % DECISIONS_EVERY === 0) loads.push(loadDecisions());
    polls++;
    Promise.all(loads)
      .then(
        function () {
          setConnection('live', 'live');
        },
        function (error) {
          if (!waitingForToken) setConnection('offline', 'offline: ' + error.message);
        },
      )
      .then(function () {
        if (!waitingForToken) setTimeout(poll, POLL_MS);
      });
  }

  // -- Forms ------------------------------------------------------------------------

  $('token-form').addEventListener('submit', function (event) {
    event.preventDefault();
    token = $('token').value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token').value = '';
    $('token-form').hidden = true;
    waitingForToken = false;
    polls = 0;
    poll();
  });

  $('explain-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var address = $('explain-ip').value.trim();
    var out = $('explain-result');
    out.replaceChildren(el('p', { className: 'muted', text: 'Looking up ' + address + '\u2026' }));
    api('/explain?ip=' + encodeURIComponent(address)).then(
      function (v) {
        var summary = el('div', { className: 'verdict' }, [
          el('span', { className: 'figure', text: v.score }),
          actionBadge(v.action),
          labelled('category', v.category),
          labelled('source', v.source),
        ]);
        summary.id = 'verdict';
        var heading = el('h3', { className: 'sr-only', text: 'Verdict for ' + address });
        if (v.matches.length === 0) {
          out.replaceChildren(heading, summary, el('p', { className: 'muted', text: 'No list, decision or rule matches ' + address + ': default verdict.' }));
          return;
        }
        var table = el('table', {}, [
          el('caption', { className: 'sr-only', text: 'Every match for ' + address + ', deciding one first' }),
          el('thead', {}, [
            row(
              ['Kind', 'Source', 'Category', 'Score', 'Penalty', 'Action', 'Detail'].map(function (h) {
                var th = el('th', { text: h, className: h === 'Score' || h === 'Penalty' ? 'num' : '' });
                th.scope = 'col';
                return th;
              }),
            ),
          ]),
          el(
            'tbody',
            {},
            v.matches.map(function (m) {
              return row([
                cell(m.kind),
                cell(m.source, 'wrap'),
                cell(m.category, 'wrap'),
                cell(m.score === undefined ? '' : m.score, 'num'),
                cell(m.penalty === undefined ? '' : '\u2212' + m.penalty, 'num'),
                cell(m.action ? actionBadge(m.action) : ''),
                cell(m.detail || '', 'wrap'),
              ]);
            }),
          ),
        ]);
        table.id = 'matches';
        out.replaceChildren(heading, summary, table);
      },
      function (error) {
        out.replaceChildren(el('p', { className: 'error', text: error.message }));
        out.firstChild.setAttribute('role', 'alert');
      },
    );
  });

  $('decision-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var body = { value: $('decision-value').value.trim(), action: $('decision-action').value };
    var durationText = $('decision-duration').value.trim();
    var reason = $('decision-reason').value.trim();
    if (durationText) body.duration = durationText;
    if (reason) body.reason = reason;
    api('/decisions', { method: 'POST', body: body })
      .then(function (d) {
        $('decision-value').value = '';
        return loadDecisions().then(function () {
          say('decision-message', 'Added ' + d.key);
        });
      })
      .catch(function (error) {
        say('decision-message', error.message, true);
      });
  });

  $('reload').addEventListener('click', function () {
    var button = $('reload');
    button.disabled = true;
    say('reload-result', 'Reloading\u2026');
    api('/reload', { method: 'POST' })
      .then(
        function (r) {
          say('reload-result', 'Reloaded ' + r.lists.length + ' lists in ' + r.durationMs + ' ms' + (r.workers ? ' in ' + r.workers + ' workers' : ''));
        },
        function (error) {
          say('reload-result', 'Reload failed: ' + error.message, true);
        },
      )
      .then(function () {
        button.disabled = false;
      });
  });

  poll();
})();
