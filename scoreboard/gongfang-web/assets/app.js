// Gongfang scoreboard: renders /api/scoreboard once, then follows /ws live without reloading;
// draws the scores over the drill from /api/history and a team's service status over the drill
// from /api/history/TEAM; steps back through the drill with /api/scoreboard?tick=N; before the
// first tick it also lists the teams' VPN connections from /api/connections.
// Plain browser JavaScript, no build step. Every value from the server goes into the page as
// text (textContent / attributes), never as HTML.
'use strict';

(function () {
  const VERDICTS = ['ok', 'mumble', 'corrupt', 'down', 'checker-error'];
  const ROLES = ['attacker', 'defender'];
  const EXPLOITS = { exploitable: '!', 'not-exploitable': '✓' };
  const PHASES = ['not_started', 'running', 'paused', 'over'];
  // The same remembered choice as the portal's and the console's.
  const LANG_KEY = 'gongfang.lang';
  const LANGUAGES = ['en', 'zh-HK'];
  const FEED_MAX = 30;
  // A team counts as connected with a handshake this recent: WireGuard shakes hands again
  // every 2 minutes while traffic flows.
  const CONNECTED_WITHIN_S = 180;
  const CONNECTIONS_EVERY_MS = 10000;
  // The graph draws the leading teams only: more lines than this cannot be told apart.
  const GRAPH_TEAMS = 8;
  const PALETTE = ['#38bdf8', '#f472b6', '#a3e635', '#fbbf24', '#c084fc', '#fb923c', '#2dd4bf', '#f87171'];
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const state = {
    lang: 'en',
    messages: {}, // the chosen language's catalogue
    liveKnown: false, // whether the feed has connected or failed yet
    announcement: null, // the newest announcement shown
    board: null, // the board shown: the live one, or a past one while replaying
    live: null, // the latest live board
    replay: null, // the tick replayed, or null for the live board
    replayTimer: null,
    history: null, // the last /api/history answer
    historyTimer: null,
    teamHistory: null, // the last /api/history/TEAM answer shown, or null
    clock: null,
    skew: 0, // server clock minus ours, in ms
    retries: 0,
    refetchTimer: null,
    fetching: false,
    fetchAgain: false,
    connections: null, // the last /api/connections answer
    vpn: true, // false once the server says the drill has no VPN
    connectionsTimer: null,
  };
  // Read by the browser test; harmless for everyone else.
  const probe = (window.__gongfang = {
    ready: false,
    renders: 0,
    snapshots: 0,
    events: 0,
    connected: false,
    connectionFetches: 0,
    vpn: null, // whether /api/connections said the drill has a VPN
    historyFetches: 0,
    graphRenders: 0,
    replay: null, // the tick replayed, once its board is shown
    teamHistories: 0,
  });

  const $ = (id) => document.getElementById(id);

  // ---- language ----

  /** The catalogue's text for `key` in the chosen language, with `{name}`s filled in. */
  function t(key, vars) {
    const text = state.messages[key] || key;
    return text.replace(/\{(\w+)\}/g, (m, name) => (vars && name in vars ? String(vars[name]) : m));
  }
  const verdictLabel = (v) => (VERDICTS.includes(v) ? t(`verdict.${v}`).toUpperCase() : v);

  function initialLang() {
    const asked = new URLSearchParams(location.search).get('lang');
    if (LANGUAGES.includes(asked)) return asked;
    try {
      const saved = localStorage.getItem(LANG_KEY);
      if (LANGUAGES.includes(saved)) return saved;
    } catch (e) {
      // storage refused (private mode): fall back to the browser's language
    }
    return (navigator.language || '').toLowerCase().startsWith('zh') ? 'zh-HK' : 'en';
  }

  /** Loads `lang`'s catalogue and redraws the page in it; remembered for every page. */
  async function setLang(lang) {
    try {
      const res = await fetch(`/static/i18n/${lang}.json`, { cache: 'no-cache' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      state.messages = await res.json();
      state.lang = lang;
    } catch (e) {
      problem(`The ${lang} texts could not be loaded (${e.message}).`);
      return;
    }
    try {
      localStorage.setItem(LANG_KEY, lang);
    } catch (e) {
      // not remembered; the choice still holds on this page
    }
    document.documentElement.lang = lang;
    document.querySelectorAll('[data-i18n]').forEach((node) => {
      node.textContent = t(node.dataset.i18n);
    });
    document.querySelectorAll('[data-i18n-label]').forEach((node) => {
      node.setAttribute('aria-label', t(node.dataset.i18nLabel));
    });
    document.querySelectorAll('[data-lang]').forEach((button) => {
      button.setAttribute('aria-pressed', String(button.dataset.lang === lang));
    });
    if (state.liveKnown) setLive(probe.connected);
    if (state.board) render();
    if (state.connections) renderConnections();
    if (state.teamHistory) renderTeamHistory();
    if (state.announcement) showAnnouncement(state.announcement);
    probe.lang = lang;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  const fmt = (n) => Number(n).toFixed(2);
  const team = (id) => state.board && state.board.teams.find((t) => t.id === id);
  const service = (id) => state.board && state.board.services.find((s) => s.id === id);
  // A name the scenario gives in both languages: the chosen language's first.
  const named = (thing) => (state.lang === 'zh-HK' && thing.name_zh ? thing.name_zh : thing.name);
  const teamName = (id) => (team(id) ? named(team(id)) : `team ${id}`);
  const serviceName = (id) => (service(id) ? named(service(id)) : `service ${id}`);
  // The other language's name beside it, when it differs.
  const zh = (thing) => {
    if (!thing.name_zh || thing.name_zh === thing.name) return null;
    return state.lang === 'zh-HK'
      ? el('span', { class: 'zh', lang: 'en' }, thing.name)
      : el('span', { class: 'zh', lang: 'zh-HK' }, thing.name_zh);
  };
  const zhText = (text) => el('span', { class: 'zh', lang: 'zh-HK' }, text);

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- rendering ----

  function render() {
    const b = state.board;
    document.title = `${named(b.drill)} · ${t('board.title')}`;
    $('drill-name').textContent = named(b.drill);
    const other = state.lang === 'zh-HK' ? b.drill.name : b.drill.name_zh;
    $('drill-name-zh').textContent = b.drill.name_zh !== b.drill.name ? other : '';
    $('drill-name-zh').lang = state.lang === 'zh-HK' ? 'en' : 'zh-HK';
    $('patching-head').title = t('board.patching_help');
    $('scored-tick').textContent = b.tick === null ? '–' : b.tick;
    $('status-tick').textContent = b.status_tick === null ? '–' : b.status_tick;
    renderFreeze(b.freeze);

    const head = $('ranking-head');
    $('patching-head').hidden = !patchingScored();
    head.querySelectorAll('th.service').forEach((n) => n.remove());
    for (const s of b.services) {
      head.append(el('th', { scope: 'col', class: 'service', 'data-service': s.slug }, named(s), zh(s)));
    }
    // A red/blue drill ranks each side among itself, in two tables; a symmetric one in one.
    const redBlue = b.drill.red_blue;
    $('red-title').hidden = !redBlue;
    $('blue-title').hidden = !redBlue;
    $('blue-wrap').hidden = !redBlue;
    if (redBlue) {
      const side = (key) =>
        b.teams
          .filter((team) => team[key] !== undefined && team[key] !== null)
          .sort((x, y) => x[key] - y[key])
          .map((team) => teamRow(team, team[key]));
      $('ranking-body').replaceChildren(...side('red_rank'));
      const copy = (n) => {
        const c = n.cloneNode(true);
        c.removeAttribute('id'); // one element per id
        return c;
      };
      $('ranking-blue-head').replaceChildren(...[...head.children].map(copy));
      $('ranking-blue-body').replaceChildren(...side('blue_rank'));
    } else {
      $('ranking-body').replaceChildren(...b.teams.map((team) => teamRow(team, team.rank)));
      $('ranking-blue-body').replaceChildren();
    }
    renderFirstBloods();
    renderReplay();
    renderGraph();
    renderClock();
    $('problem').hidden = true;
    probe.renders += 1;
    probe.ready = true;
  }

  /** The freeze notice: spectators see the board as it stood; organisers and judges are told
   * theirs is the live one. */
  function renderFreeze(freeze) {
    const node = $('freeze');
    node.hidden = !freeze;
    if (!freeze) return;
    node.dataset.live = String(freeze.live);
    node.textContent = t(freeze.live ? 'board.freeze.live' : 'board.freeze.public', { tick: freeze.through });
  }

  /** Whether the drill scores patching (`[patches] scoring`), which gets a column of its own. */
  function patchingScored() {
    return state.board.drill.patch_scoring !== 'none';
  }

  /** A team's row, at `rank` in the ranking it is shown in. */
  function teamRow(team, rank) {
    const row = el('tr', {
      'data-team': team.slug,
      'data-team-id': team.id,
      'data-rank': rank,
      'data-role': team.role,
      'data-nop': String(team.nop),
    });
    row.append(el('td', { class: 'rank num' }, String(rank)));
    const name = el('td', { class: 'team-name' }, named(team), zh(team));
    if (team.nop) name.append(el('span', { class: 'tag' }, 'NOP'));
    if (ROLES.includes(team.role)) name.append(el('span', { class: 'tag' }, t(`board.role.${team.role}`)));
    if (team.services.length > 0) {
      const button = el(
        'button',
        { type: 'button', class: 'plain', 'data-history': team.slug, 'aria-label': t('board.history_of', { team: named(team) }) },
        t('board.history_button'),
      );
      button.addEventListener('click', () => openTeamHistory(team.slug));
      name.append(button);
    }
    row.append(name);
    const keys = patchingScored() ? ['attack', 'defence', 'sla', 'patching', 'total'] : ['attack', 'defence', 'sla', 'total'];
    for (const key of keys) {
      const cell = el('td', { class: `num ${key}`, 'data-score': key, 'data-value': team[key] }, fmt(team[key]));
      if (key === 'total') {
        const delta = change(team);
        if (delta !== null) {
          const sign = delta > 0.004 ? 'up' : delta < -0.004 ? 'down' : 'same';
          const text = `${delta >= 0 ? '+' : '−'}${fmt(Math.abs(delta))}`;
          cell.append(
            el('span', { class: 'delta', 'data-sign': sign, 'data-change': delta.toFixed(2), title: t('board.change_since', { tick: state.board.tick - 1 }) }, text),
          );
        }
      }
      row.append(cell);
    }
    const cells = new Map(team.services.map((c) => [c.service, c]));
    for (const s of state.board.services) row.append(statusCell(team, s, cells.get(s.id), false));
    return row;
  }

  function statusCell(team, s, cell, changed) {
    if (!cell) {
      return el('td', { class: 'status none', 'data-team': team.slug, 'data-service': s.slug, title: t('board.no_service') }, '—');
    }
    const verdict = cell.verdict || 'none';
    const label = cell.verdict ? verdictLabel(cell.verdict) : t('board.pending');
    const title = cell.verdict
      ? `${named(team)} · ${named(s)}: ${label}${cell.message ? ` — ${cell.message}` : ''}`
      : `${named(team)} · ${named(s)}: ${t('board.no_tick_yet')}`;
    const td = el(
      'td',
      {
        class: changed ? 'status changed' : 'status',
        'data-team': team.slug,
        'data-service': s.slug,
        'data-verdict': verdict,
        title,
        // Reachable by keyboard and touch, not only by a mouse hover: focus or tap shows it.
        tabindex: '0',
      },
      label,
    );
    const detail = () => {
      $('cell-detail').textContent = td.title;
    };
    td.addEventListener('focus', detail);
    td.addEventListener('click', detail);
    // What the reference exploit's replay showed in the same tick.
    const mark = EXPLOITS[cell.exploit];
    if (mark) {
      const help = t(`board.exploit.${cell.exploit}`);
      td.setAttribute('data-exploit', cell.exploit);
      td.append(el('span', { class: `exploit ${cell.exploit}`, title: help }, mark));
      td.title += ` · ${help}`;
    }
    return td;
  }

  /** How much `team`'s total moved in the shown board's tick, from the score series; null
   * when the series does not hold the tick before it. */
  function change(team) {
    const h = state.history;
    const tick = state.board.tick;
    if (!h || tick === null || tick === undefined) return null;
    const i = h.ticks.indexOf(tick);
    if (i < 1 || h.ticks[i - 1] !== tick - 1) return null;
    const series = h.teams.find((s) => s.id === team.id);
    return series ? series.totals[i] - series.totals[i - 1] : null;
  }

  // ---- the drill's past: replay, score graph, a team's status over the drill ----

  /** The slider's range follows the live board; the notice says when the board is a past one. */
  function renderReplay() {
    const latest = state.live ? state.live.tick : null;
    const bar = $('replay-bar');
    bar.hidden = latest === null || latest === undefined;
    const replaying = state.replay !== null;
    const notice = $('replay-notice');
    notice.hidden = !replaying;
    $('replay-live').hidden = !replaying;
    if (replaying) notice.textContent = t('board.replay_notice', { tick: state.replay });
    if (bar.hidden) return;
    const input = $('replay');
    input.max = String(latest);
    if (!replaying && document.activeElement !== input) input.value = String(latest);
    $('replay-tick').textContent = t('board.tick_n', { tick: input.value });
  }

  async function showReplay(tick) {
    if (state.live && tick >= state.live.tick) {
      backToLive();
      return;
    }
    try {
      const res = await fetch(`/api/scoreboard?tick=${tick}`, { cache: 'no-store' });
      const body = await res.json();
      if (!res.ok) throw new Error(body.error ? body.error.message : `HTTP ${res.status}`);
      if (Number($('replay').value) !== tick) return; // moved on meanwhile
      state.replay = tick;
      state.board = body;
      probe.replay = tick;
      $('cell-detail').textContent = '';
      render();
    } catch (e) {
      problem(t('board.unavailable', { reason: e.message }));
    }
  }

  function backToLive() {
    state.replay = null;
    probe.replay = null;
    $('cell-detail').textContent = '';
    if (state.live) {
      state.board = state.live;
      render();
    }
  }

  async function fetchHistory() {
    try {
      const res = await fetch('/api/history', { cache: 'no-store' });
      if (!res.ok) return; // keep the last graph; the next tick asks again
      state.history = await res.json();
      probe.historyFetches += 1;
      if (state.board) render();
    } catch (e) {
      // Unreachable for a moment: the next tick asks again.
    }
    if (state.teamHistory) openTeamHistory(state.teamHistory.team.slug, false);
  }

  // Like the board: spectators hearing the same event spread their requests a little.
  function scheduleHistory() {
    if (state.historyTimer !== null) return;
    state.historyTimer = setTimeout(() => {
      state.historyTimer = null;
      fetchHistory();
    }, 300 + Math.random() * 500);
  }

  /** The leading teams' totals after each scored tick, as lines of an inline SVG. */
  function renderGraph() {
    const h = state.history;
    const section = $('graph-section');
    section.hidden = !h || h.ticks.length === 0;
    if (section.hidden) return;
    const W = 800;
    const H = 260;
    const pad = { left: 56, right: 12, top: 12, bottom: 26 };
    const last = h.ticks.length - 1;
    const lead = h.teams
      .filter((team) => !team.nop)
      .sort((a, b) => b.totals[last] - a.totals[last] || a.id - b.id)
      .slice(0, GRAPH_TEAMS);
    const values = lead.flatMap((team) => team.totals);
    const lo = Math.min(0, ...values);
    const hi = Math.max(lo + 1, ...values);
    const first = h.ticks[0];
    const span = Math.max(1, h.ticks[last] - first);
    const x = (tick) => pad.left + ((tick - first) / span) * (W - pad.left - pad.right);
    const y = (v) => pad.top + ((hi - v) / (hi - lo)) * (H - pad.top - pad.bottom);
    const nodes = [svg('desc', { id: 'graph-desc' }, t('board.graph_desc', { count: lead.length }))];
    nodes.push(svg('line', { class: 'axis', x1: pad.left, x2: W - pad.right, y1: y(0), y2: y(0) }));
    nodes.push(svg('line', { class: 'axis', x1: pad.left, x2: pad.left, y1: pad.top, y2: H - pad.bottom }));
    nodes.push(svg('text', { class: 'axis-label', x: pad.left - 6, y: y(hi) + 4, 'text-anchor': 'end' }, fmt(hi)));
    nodes.push(svg('text', { class: 'axis-label', x: pad.left - 6, y: y(lo) + 4, 'text-anchor': 'end' }, fmt(lo)));
    nodes.push(svg('text', { class: 'axis-label', x: pad.left, y: H - 8 }, t('board.tick_n', { tick: first })));
    nodes.push(svg('text', { class: 'axis-label', x: W - pad.right, y: H - 8, 'text-anchor': 'end' }, t('board.tick_n', { tick: h.ticks[last] })));
    lead.forEach((team, i) => {
      const points = h.ticks.map((tick, j) => `${x(tick).toFixed(1)},${y(team.totals[j]).toFixed(1)}`).join(' ');
      nodes.push(svg('polyline', { points, stroke: PALETTE[i], 'data-team': team.slug }));
    });
    if (state.replay !== null) {
      const at = x(state.replay);
      nodes.push(svg('line', { class: 'marker', x1: at, x2: at, y1: pad.top, y2: H - pad.bottom, 'data-tick': state.replay }));
    }
    $('graph').replaceChildren(...nodes);
    $('graph-legend').replaceChildren(
      ...lead.map((team, i) => {
        const swatch = svg('svg', { class: 'line', viewBox: '0 0 20 4', 'aria-hidden': 'true' });
        swatch.append(svg('rect', { width: 20, height: 4, fill: PALETTE[i] }));
        return el('li', { 'data-team': team.slug }, swatch, named(team), el('span', { class: 'value' }, fmt(team.totals[last])));
      }),
    );
    probe.graphRenders += 1;
  }

  /** Opens `slug`'s status over the drill below the board, and moves the focus to it unless
   * it is only a refresh. */
  async function openTeamHistory(slug, focus = true) {
    const section = $('team-history');
    section.hidden = false;
    try {
      const res = await fetch(`/api/history/${encodeURIComponent(slug)}`, { cache: 'no-store' });
      const body = await res.json();
      if (!res.ok) throw new Error(body.error ? body.error.message : `HTTP ${res.status}`);
      state.teamHistory = body;
      renderTeamHistory();
    } catch (e) {
      $('team-history-body').textContent = t('board.history_unavailable', { reason: e.message });
    }
    if (focus) {
      $('team-history-title').setAttribute('tabindex', '-1');
      $('team-history-title').focus();
    }
  }

  function renderTeamHistory() {
    const h = state.teamHistory;
    $('team-history-title').textContent = t('board.history_title', { team: named(h.team) });
    const strips = h.services.map((s) => {
      const verdicts = [...s.verdicts].map((letter) => h.legend[letter] || 'none');
      const counts = new Map();
      for (const v of verdicts) counts.set(v, (counts.get(v) || 0) + 1);
      const summary = [...counts]
        .map(([v, n]) => `${VERDICTS.includes(v) ? verdictLabel(v) : t('board.not_checked')} ${n}`)
        .join(' · ');
      const strip = svg('svg', { viewBox: `0 0 ${Math.max(1, verdicts.length)} 1`, preserveAspectRatio: 'none', 'aria-hidden': 'true' });
      // One rectangle per run of equal verdicts: a 60-hour drill has thousands of ticks.
      for (let i = 0; i < verdicts.length; ) {
        let j = i;
        while (j < verdicts.length && verdicts[j] === verdicts[i]) j += 1;
        const v = VERDICTS.includes(verdicts[i]) ? verdicts[i] : 'none';
        strip.append(svg('rect', { x: i, y: 0, width: j - i, height: 1, 'data-verdict': v, 'data-from': i, 'data-to': j - 1 }));
        i = j;
      }
      const line = t('board.history_summary', { service: named(s), ticks: verdicts.length, counts: summary });
      return el('div', { class: 'strip', 'data-service': s.slug }, el('p', {}, line), strip);
    });
    $('team-history-body').replaceChildren(...strips);
    probe.teamHistories += 1;
  }

  function renderFirstBloods() {
    const list = $('first-bloods');
    const items = state.board.first_bloods.map((f) =>
      el(
        'li',
        { 'data-service': service(f.service) ? service(f.service).slug : f.service, 'data-attacker': f.attacker },
        el('span', { class: 'when' }, t('board.tick_n', { tick: f.tick })),
        t('board.first_blood_line', { service: serviceName(f.service), attacker: teamName(f.attacker), victim: teamName(f.victim) }),
      ),
    );
    if (items.length === 0) items.push(el('li', { class: 'empty' }, t('board.no_first_blood')));
    list.replaceChildren(...items);
  }

  function renderClock() {
    const c = state.clock;
    const tick = c && c.tick !== null ? c.tick : state.board && state.board.tick;
    const node = $('tick');
    node.textContent = tick === null || tick === undefined ? '–' : tick;
    node.setAttribute('data-tick', tick === null || tick === undefined ? '' : tick);
    const phase = $('phase');
    phase.textContent = c ? (PHASES.includes(c.phase) ? t(`board.phase.${c.phase}`) : c.phase) : '–';
    phase.setAttribute('data-phase', c ? c.phase : '');
    renderCountdown();
    showConnections();
  }

  // ---- teams' VPN connections, before the first tick ----

  const pregame = () => !!state.clock && state.clock.phase === 'not_started';

  function showConnections() {
    $('connections').hidden = !(state.vpn && state.connections && pregame());
  }

  function connectionStatus(t) {
    if (t.seconds_ago === null || t.seconds_ago === undefined) {
      return { key: 'never', en: 'never connected', zh: '未曾連線' };
    }
    if (t.seconds_ago < CONNECTED_WITHIN_S) return { key: 'connected', en: 'connected', zh: '已連線' };
    const minutes = Math.floor(t.seconds_ago / 60);
    if (minutes < 120) return { key: 'seen', en: `seen ${minutes} min ago`, zh: `${minutes} 分鐘前曾連線` };
    const hours = Math.floor(minutes / 60);
    return { key: 'seen', en: `seen ${hours} h ago`, zh: `${hours} 小時前曾連線` };
  }

  function connectionRow(t) {
    const status = connectionStatus(t);
    const peers =
      t.peers_issued === 0
        ? ['no configs issued', zhText('未獲發設定檔')]
        : [
            `${t.peers_connected} of ${t.peers_issued} configs have connected`,
            zhText(`${t.peers_issued} 個設定檔中 ${t.peers_connected} 個曾連線`),
          ];
    return el(
      'li',
      { 'data-team': t.slug, 'data-status': status.key },
      el('span', { class: 'conn-team' }, t.name, zh(t)),
      el('span', { class: 'conn-status' }, status.en, zhText(status.zh)),
      el('span', { class: 'conn-peers' }, ...peers),
    );
  }

  function renderConnections() {
    const teams = state.connections.teams;
    const connected = teams.filter((t) => connectionStatus(t).key === 'connected').length;
    $('connections-summary').replaceChildren(
      `${connected} of ${teams.length} teams connected`,
      zhText(`${teams.length} 隊中 ${connected} 隊已連線`),
    );
    $('connections-list').replaceChildren(...teams.map(connectionRow));
    showConnections();
  }

  // The newest announcement, in English and, when the organisers gave it, Hong Kong Chinese.
  function showAnnouncement(a) {
    state.announcement = a;
    const title = a.title_zh ? `${a.title} · ${a.title_zh}` : a.title;
    const node = $('announcement');
    node.textContent = t('board.announcement', { title });
    node.hidden = false;
    return node.textContent;
  }

  // What was announced before this page opened; later ones arrive on the live feed.
  async function fetchAnnouncements() {
    try {
      const res = await fetch('/api/announcements', { cache: 'no-store' });
      if (!res.ok) return;
      const list = await res.json();
      if (list.length > 0 && $('announcement').hidden) showAnnouncement(list[0]);
    } catch (e) {
      // Not fatal: the live feed still brings new ones.
    }
  }

  async function fetchConnections() {
    // Once the drill runs the list is gone for good; so is it on a drill without a VPN.
    if (!state.vpn || (state.clock && !pregame())) {
      showConnections();
      return;
    }
    probe.connectionFetches += 1;
    try {
      const res = await fetch('/api/connections', { cache: 'no-store' });
      if (res.status === 404) {
        state.vpn = false;
        probe.vpn = false;
        clearInterval(state.connectionsTimer);
        showConnections();
        return;
      }
      if (!res.ok) return; // keep the last list; the next round asks again
      state.connections = await res.json();
      probe.vpn = true;
      renderConnections();
    } catch (e) {
      // Unreachable for a moment: keep the last list; the next round asks again.
    }
  }

  function renderCountdown() {
    const c = state.clock;
    const node = $('countdown');
    if (!c || !c.next_tick_at || c.phase === 'over') {
      node.textContent = '–';
      return;
    }
    const left = Math.max(0, Date.parse(c.next_tick_at) - (Date.now() + state.skew));
    const s = Math.ceil(left / 1000);
    node.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }

  function feed(tick, text) {
    const list = $('feed');
    list.prepend(el('li', {}, tick === null || tick === undefined ? '' : el('span', { class: 'when' }, t('board.tick_n', { tick })), text));
    while (list.children.length > FEED_MAX) list.lastElementChild.remove();
  }

  function problem(text) {
    const node = $('problem');
    node.textContent = text;
    node.hidden = false;
  }

  // ---- data ----

  function applyBoard(board) {
    state.live = board;
    setClock(board.clock);
    if (state.replay === null) {
      state.board = board;
      render();
    } else {
      renderReplay();
    }
  }

  function setClock(clock) {
    state.clock = clock;
    state.skew = Date.parse(clock.now) - Date.now();
    if (state.board) renderClock();
  }

  async function fetchBoard() {
    if (state.fetching) {
      state.fetchAgain = true;
      return;
    }
    state.fetching = true;
    try {
      const res = await fetch('/api/scoreboard', { cache: 'no-store' });
      const body = await res.json();
      if (!res.ok) throw new Error(body.error ? body.error.message : `HTTP ${res.status}`);
      applyBoard(body);
    } catch (e) {
      problem(t('board.unavailable', { reason: e.message }));
      scheduleFetch(3000);
    } finally {
      state.fetching = false;
      if (state.fetchAgain) {
        state.fetchAgain = false;
        fetchBoard();
      }
    }
  }

  // Many spectators hear the same event at once; a little jitter spreads their requests.
  function scheduleFetch(base) {
    if (state.refetchTimer !== null) return;
    state.refetchTimer = setTimeout(() => {
      state.refetchTimer = null;
      fetchBoard();
    }, base + Math.random() * 250);
  }

  function onVerdict(e) {
    const b = state.board;
    if (!b || state.replay !== null || (b.status_tick !== null && e.tick < b.status_tick)) return;
    const t = team(e.team);
    const s = service(e.service);
    const cell = t && s && t.services.find((c) => c.service === e.service);
    if (!cell) return;
    cell.verdict = e.to;
    cell.message = e.message;
    // A team that attacks and defends is in both rankings of a red/blue drill.
    const shown = document.querySelectorAll(
      `td.status[data-team="${CSS.escape(t.slug)}"][data-service="${CSS.escape(s.slug)}"]`,
    );
    shown.forEach((old) => old.replaceWith(statusCell(t, s, cell, true)));
  }

  function onFirstBlood(e) {
    const b = state.board;
    if (!b || state.replay !== null || b.first_bloods.some((f) => f.service === e.service)) return;
    b.first_bloods.push({ service: e.service, attacker: e.attacker, victim: e.victim, tick: e.tick });
    b.first_bloods.sort((x, y) => x.service - y.service);
    renderFirstBloods();
  }

  function handle(msg) {
    probe.events += 1;
    switch (msg.type) {
      case 'snapshot':
        probe.snapshots += 1;
        applyBoard(msg);
        break;
      case 'clock':
        setClock(msg);
        break;
      case 'tick_opened':
        feed(msg.tick, t('board.event.tick_opened'));
        scheduleFetch(50);
        break;
      case 'tick_closed':
        feed(msg.tick, t('board.event.tick_closed'));
        scheduleFetch(50);
        break;
      case 'scores_updated':
        feed(msg.tick, t('board.event.scores_updated'));
        scheduleFetch(50);
        scheduleHistory();
        break;
      case 'score_adjusted':
        feed(
          null,
          t(msg.points > 0 ? 'board.event.points_added' : 'board.event.points_taken', {
            points: fmt(Math.abs(msg.points)),
            team: teamName(msg.team),
          }),
        );
        scheduleFetch(50);
        scheduleHistory();
        break;
      case 'board_frozen':
        feed(null, msg.through === null ? t('board.event.unfrozen') : t('board.event.frozen', { tick: msg.through }));
        scheduleHistory();
        break;
      case 'rescored':
        feed(msg.through, t('board.event.rescored'));
        scheduleFetch(50);
        scheduleHistory();
        break;
      case 'verdict_changed':
        onVerdict(msg);
        feed(
          msg.tick,
          `${teamName(msg.team)} · ${serviceName(msg.service)}: ${msg.from ? verdictLabel(msg.from) : t('board.new')} → ${verdictLabel(msg.to)}`,
        );
        break;
      case 'flag_captured':
        feed(msg.tick, t('board.event.captured', { attacker: teamName(msg.attacker), victim: teamName(msg.victim), service: serviceName(msg.service) }));
        break;
      case 'first_blood':
        onFirstBlood(msg);
        feed(msg.tick, t('board.event.first_blood', { service: serviceName(msg.service), attacker: teamName(msg.attacker) }));
        break;
      case 'paused':
        feed(null, t('board.event.paused'));
        break;
      case 'resumed':
        feed(null, t('board.event.resumed'));
        break;
      case 'extended':
        feed(null, t('board.event.extended', { minutes: Math.round(msg.total_secs / 60) }));
        break;
      case 'announcement':
        feed(null, showAnnouncement(msg));
        break;
      case 'report_ruled':
        feed(
          null,
          t(msg.valid ? 'board.event.ruled_valid' : 'board.event.ruled_invalid', {
            team: teamName(msg.team),
            kind: t(`board.kind.${msg.kind === 'attack' ? 'attack' : 'defence'}`),
            points: msg.points,
          }) + (msg.stage === 'appeal' ? t('board.event.on_appeal') : ''),
        );
        scheduleHistory();
        break;
      case 'error':
        problem(t('board.event.error', { message: msg.message }));
        break;
      default:
        break; // a newer server's event; ignore it
    }
  }

  function setLive(live) {
    state.liveKnown = true;
    probe.connected = live;
    const node = $('live');
    node.setAttribute('data-live', String(live));
    node.textContent = live ? t('board.live_now') : t('board.reconnecting');
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}/ws`);
    socket.onopen = () => {
      state.retries = 0;
      setLive(true);
    };
    socket.onmessage = (m) => {
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch (e) {
        return;
      }
      handle(msg);
    };
    socket.onclose = () => {
      setLive(false);
      const delay = Math.min(10000, 500 * 2 ** state.retries) + Math.random() * 500;
      state.retries += 1;
      setTimeout(connect, delay);
    };
    socket.onerror = () => socket.close();
  }

  document.querySelectorAll('[data-lang]').forEach((button) => {
    button.addEventListener('click', () => setLang(button.dataset.lang));
  });
  $('replay').addEventListener('input', () => {
    const tick = Number($('replay').value);
    $('replay-tick').textContent = t('board.tick_n', { tick });
    clearTimeout(state.replayTimer);
    state.replayTimer = setTimeout(() => showReplay(tick), 150);
  });
  $('replay-live').addEventListener('click', () => {
    backToLive();
    $('replay').focus();
  });
  $('team-history-close').addEventListener('click', () => {
    state.teamHistory = null;
    $('team-history').hidden = true;
  });
  setInterval(renderCountdown, 250);
  // The texts first, so the board is drawn once, in its language.
  setLang(initialLang()).finally(() => fetchBoard()).finally(() => {
    connect();
    fetchHistory();
    fetchAnnouncements();
    fetchConnections();
    state.connectionsTimer = setInterval(fetchConnections, CONNECTIONS_EVERY_MS);
  });
})();
