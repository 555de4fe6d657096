// The organisers' console: an organiser or observer logs in with name and password, then sees
// the drill's state, the start-of-drill checklist, the reports' anonymised counts and the audit
// log; organisers pause, resume, extend the end and post announcements in both languages.
// Every change goes through the live admin API, which audits it under the logged-in account;
// observers get the page without the buttons, and the server refuses their changes anyway.
'use strict';

(() => {
  const { $, t, msg, el, api } = Gf;
  const state = {
    me: null,
    drill: null,
    checklist: null,
    connections: null,
    stats: null, // the reports' anonymised counts
    injects: [], // with how their answers stand
    audit: [],
    nextBefore: null,
    announcements: [],
    defects: [],
    adjustments: [],
    teams: [], // from the live scoreboard, with their totals
    roster: [], // every team of the drill, from /api/admin/teams
  };

  function showLogin(error) {
    // Nothing is asked for again until someone logs in (a dead cookie must not be resent).
    state.me = null;
    $('app').hidden = true;
    $('logout').hidden = true;
    $('login-section').hidden = false;
    $('login-error').textContent = error || '';
    $('whoami').textContent = '';
  }

  function renderDrill() {
    const d = state.drill;
    if (!d) return;
    $('drill-name').textContent = d.drill;
    $('drill-state').textContent = d.paused ? t('console.drill.paused') : t('console.drill.running');
    $('drill-state').dataset.paused = String(d.paused);
    $('drill-tick').textContent = d.current_tick ?? '—';
    $('drill-started').textContent = Gf.time(d.started_at);
    $('drill-ends').textContent = Gf.time(d.ends_at);
    $('pause').disabled = d.paused;
    $('resume').disabled = !d.paused;
    const frozen = d.frozen_through !== null && d.frozen_through !== undefined;
    $('board-freeze').textContent = frozen
      ? t('console.freeze.frozen', { tick: d.frozen_through, at: Gf.time(d.frozen_at) })
      : t('console.freeze.live');
    $('board-freeze').dataset.frozen = String(frozen);
    $('freeze').disabled = frozen;
    $('unfreeze').disabled = !frozen;
  }

  function renderChecklist() {
    const c = state.checklist;
    const body = $('checklist');
    body.replaceChildren();
    if (!c) return;
    $('checklist-summary').textContent = c.tick === null
      ? t('console.checklist.no_tick')
      : t('console.checklist.summary', { ready: c.ready, total: c.playing, tick: c.tick });
    for (const r of c.rows) {
      const row = el('tr');
      const verdict = el('td');
      verdict.append(el('span', msg(`verdict.${r.verdict || 'none'}`), `verdict v-${r.verdict || 'none'}`));
      // Down on purpose: not counted above.
      if (r.out_of_drill) verdict.append(' ', el('span', t('console.checklist.out_of_drill'), 'muted'));
      row.append(el('td', Gf.name(r.team_name)), el('td', Gf.name(r.service_name)), verdict);
      row.append(el('td', r.up ? t('common.yes') : t('common.no')), el('td', r.checker_passing ? t('common.yes') : t('common.no')));
      body.append(row);
    }
    const conn = state.connections;
    $('connections-box').hidden = !conn;
    const cbody = $('connections');
    cbody.replaceChildren();
    if (!conn) return;
    for (const team of conn.teams) {
      const row = el('tr');
      row.append(el('td', Gf.name({ en: team.name, zh: team.name_zh })));
      row.append(el('td', `${team.peers_connected} / ${team.peers_issued}`), el('td', Gf.time(team.last_handshake)));
      cbody.append(row);
    }
  }

  // The reports' anonymised counts: one row per kind, one per service.
  function renderStats() {
    const s = state.stats;
    const kinds = $('stats-kinds');
    const services = $('stats-services');
    kinds.replaceChildren();
    services.replaceChildren();
    if (!s) return;
    for (const kind of ['attack', 'defence']) {
      const k = s[kind];
      const row = el('tr');
      row.dataset.kind = kind;
      const wait = k.median_minutes_to_ruling === null ? '—' : t('console.stats.minutes', { n: k.median_minutes_to_ruling });
      row.append(el('th', t(`console.stats.${kind}`)));
      for (const n of [k.filed, k.pending, k.disputed, k.valid, k.invalid, k.appealed, k.points, k.teams_filing]) row.append(el('td', n));
      row.append(el('td', wait));
      kinds.append(row);
    }
    for (const x of s.services) {
      const row = el('tr');
      row.dataset.service = x.service;
      row.append(el('td', Gf.name(x.name)), el('td', `${x.attack_valid} / ${x.attack_filed}`), el('td', `${x.defence_valid} / ${x.defence_filed}`));
      services.append(row);
    }
  }

  function renderInjects() {
    const body = $('injects');
    body.replaceChildren();
    const zh = Gf.lang() === 'zh-HK';
    for (const i of state.injects) {
      const row = el('tr');
      row.dataset.inject = String(i.id);
      row.append(el('td', (zh && i.title_zh) || i.title), el('td', Gf.time(i.deadline)));
      row.append(el('td', `${i.answered} / ${i.asked}`), el('td', i.late), el('td', i.graded));
      body.append(row);
    }
  }

  // "name | points | 中文名稱" lines as the rubric the API takes.
  function rubricOf(text) {
    return text
      .split('\n')
      .map((line) => line.split('|').map((part) => part.trim()))
      .filter((parts) => parts[0])
      .map(([name, points, nameZh]) => (nameZh ? { name, max_points: Number(points), name_zh: nameZh } : { name, max_points: Number(points) }));
  }

  // The team and service choices of the defect and service forms, from the checklist's rows.
  function fillDefectChoices() {
    const c = state.checklist;
    if (!c) return;
    const choices = [
      ['defect-team', 'team_slug'],
      ['defect-service', 'service_slug'],
      ['control-team', 'team_slug'],
      ['control-service', 'service_slug'],
      ['logs-team', 'team_slug'],
      ['logs-service', 'service_slug'],
    ];
    for (const [id, key] of choices) {
      const select = $(id);
      const chosen = select.value;
      select.replaceChildren();
      for (const slug of [...new Set(c.rows.map((r) => r[key]))]) {
        const option = el('option', slug);
        option.value = slug;
        select.append(option);
      }
      if (chosen) select.value = chosen;
    }
  }

  async function loadLogs() {
    const q = new URLSearchParams({ team: $('logs-team').value, service: $('logs-service').value });
    const tick = $('logs-tick').value.trim();
    if (tick) q.set('tick', tick);
    const answer = await api('GET', `/api/admin/checker-log?${q}`);
    const body = $('logs');
    body.replaceChildren();
    if (!answer.ok) {
      $('logs-summary').textContent = Gf.errorText(answer);
      return;
    }
    const log = answer.data;
    $('logs-summary').textContent = log.tick === null
      ? t('console.checklist.no_tick')
      : t('console.logs.summary', { count: log.actions.length, tick: log.tick });
    for (const a of log.actions) {
      const row = el('tr');
      const verdict = el('td');
      verdict.append(el('span', msg(`verdict.${a.verdict}`), `verdict v-${a.verdict}`));
      // A checker error says what kind: a timeout is not a crash.
      if (a.fault) verdict.append(' ', el('span', t(`console.logs.fault.${a.fault}`), 'fault'));
      const action = a.store === null ? a.action : `${a.action} #${a.store}`;
      row.append(el('td', action, 'mono'), verdict, el('td', a.message), el('td', a.log || '—', 'mono log'));
      body.append(row);
    }
  }

  function renderDefects() {
    const body = $('defects');
    body.replaceChildren();
    for (const d of state.defects) {
      const row = el('tr');
      row.append(el('td', d.tick), el('td', d.team), el('td', d.service), el('td', d.reason), el('td', d.marked_by));
      body.append(row);
    }
  }

  /** The after-action report links follow the chosen team. */
  function aarLinks() {
    const team = encodeURIComponent($('team-token-team').value);
    $('aar-en').href = `/api/admin/teams/after-action?team=${team}&lang=en`;
    $('aar-zh').href = `/api/admin/teams/after-action?team=${team}&lang=zh-HK`;
  }

  function renderTeams() {
    const select = $('team-token-team');
    const chosen = select.value;
    select.replaceChildren();
    const body = $('teams');
    body.replaceChildren();
    for (const team of state.roster) {
      const label = `${team.slug} · ${Gf.name({ en: team.name, zh: team.name_zh })}`;
      const option = el('option', label);
      option.value = team.slug;
      select.append(option);
      const row = el('tr');
      const role = t(`console.teams.role_${team.role}`) + (team.nop ? ' · NOP' : '');
      const playing = team.disabled_at
        ? t('console.teams.disabled_since', { at: Gf.time(team.disabled_at) })
        : t('console.teams.playing');
      row.append(el('td', team.id), el('td', label), el('td', role), el('td', team.network, 'mono'), el('td', playing));
      body.append(row);
    }
    if (chosen) select.value = chosen;
  }

  function renderAdjustments() {
    const select = $('adjust-team');
    const chosen = select.value;
    select.replaceChildren();
    for (const team of state.teams) {
      const option = el('option', `${team.slug} · ${Gf.name({ en: team.name, zh: team.name_zh })}`);
      option.value = team.slug;
      select.append(option);
    }
    if (chosen) select.value = chosen;
    const body = $('adjustments');
    body.replaceChildren();
    for (const a of state.adjustments) {
      const row = el('tr');
      const points = el('td', `${a.points > 0 ? '+' : ''}${a.points}`, 'num');
      row.append(el('td', a.team), points, el('td', a.reason), el('td', a.made_by), el('td', Gf.time(a.made_at)));
      body.append(row);
    }
  }

  function renderAudit() {
    const body = $('audit');
    body.replaceChildren();
    for (const e of state.audit) {
      const row = el('tr');
      const detail = el('td', JSON.stringify(e.detail), 'mono');
      row.append(el('td', Gf.time(e.at)), el('td', e.actor), el('td', e.action, 'mono'), detail);
      body.append(row);
    }
    $('audit-older').hidden = state.nextBefore === null;
  }

  function renderAnnouncements() {
    const list = $('announcements');
    list.replaceChildren();
    for (const a of state.announcements.slice(0, 5)) {
      const item = el('li');
      item.append(el('strong', a.title));
      if (a.title_zh) item.append(' · ', el('strong', a.title_zh, null));
      item.append(' ', el('small', Gf.time(a.posted_at), 'muted'));
      list.append(item);
    }
  }

  function render() {
    renderDrill();
    renderChecklist();
    renderStats();
    renderInjects();
    renderDefects();
    renderAdjustments();
    renderTeams();
    aarLinks();
    renderAudit();
    renderAnnouncements();
  }

  async function loadDrill() {
    const answer = await api('GET', '/api/admin/drill');
    if (answer.status === 401) return showLogin(t('console.login.expired'));
    if (answer.ok) state.drill = answer.data;
    renderDrill();
  }

  async function loadChecklist() {
    const checklist = await api('GET', '/api/admin/checklist');
    if (checklist.ok) state.checklist = checklist.data;
    fillDefectChoices();
    // Only a drill with a VPN has connections to list.
    const connections = checklist.ok && checklist.data.vpn ? await api('GET', '/api/connections') : null;
    state.connections = connections && connections.ok ? connections.data : null;
    renderChecklist();
  }

  async function loadInjects() {
    const answer = await api('GET', '/api/admin/injects');
    if (answer.ok) state.injects = answer.data;
    renderInjects();
  }

  async function loadStats() {
    const answer = await api('GET', '/api/admin/report-stats');
    state.stats = answer.ok ? answer.data : null;
    renderStats();
  }

  function auditQuery(before) {
    const q = new URLSearchParams();
    const actor = $('audit-actor').value.trim();
    const action = $('audit-action').value.trim();
    if (actor) q.set('actor', actor);
    if (action) q.set('action', action);
    if (before) q.set('before', before);
    q.set('limit', '50');
    return `/api/admin/audit?${q}`;
  }

  async function loadAudit(more) {
    const answer = await api('GET', auditQuery(more ? state.nextBefore : null));
    if (!answer.ok) return Gf.announce(Gf.errorText(answer));
    state.audit = more ? state.audit.concat(answer.data.entries) : answer.data.entries;
    state.nextBefore = answer.data.next_before;
    renderAudit();
  }

  async function loadAnnouncements() {
    const answer = await api('GET', '/api/announcements');
    if (answer.ok) state.announcements = answer.data;
    renderAnnouncements();
  }

  async function loadDefects() {
    const answer = await api('GET', '/api/admin/defective');
    if (answer.ok) state.defects = answer.data;
    renderDefects();
  }

  async function loadAdjustments() {
    const [answer, board] = await Promise.all([api('GET', '/api/admin/adjustments'), api('GET', '/api/scoreboard')]);
    if (answer.ok) state.adjustments = answer.data;
    if (board.ok) state.teams = board.data.teams.slice().sort((a, b) => a.id - b.id);
    renderAdjustments();
  }

  async function loadTeams() {
    const answer = await api('GET', '/api/admin/teams');
    if (answer.ok) state.roster = answer.data;
    renderTeams();
    aarLinks();
  }

  async function refresh() {
    await Promise.all([
      loadDrill(),
      loadChecklist(),
      loadStats(),
      loadInjects(),
      loadDefects(),
      loadAdjustments(),
      loadTeams(),
      loadAudit(false),
      loadAnnouncements(),
    ]);
  }

  async function enter(me) {
    state.me = me;
    $('login-section').hidden = true;
    $('app').hidden = false;
    $('logout').hidden = false;
    $('whoami').textContent = `${me.name} · ${msg(`role.${me.role}`)}`;
    const observer = me.role !== 'organiser';
    $('read-only').hidden = !observer;
    document.querySelectorAll('.changes').forEach((node) => {
      node.hidden = observer;
    });
    await refresh();
  }

  // Runs one change, says how it went, and shows its effect and its audit entry.
  async function change(method, path, body, done) {
    const answer = await api(method, path, body);
    Gf.announce(answer.ok ? done : Gf.errorText(answer));
    await refresh();
    return answer;
  }

  function wire() {
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const answer = await Gf.login({ name: $('login-name').value.trim(), password: $('login-password').value });
      $('login-password').value = '';
      if (!answer.ok) return showLogin(Gf.errorText(answer));
      if (!['organiser', 'observer'].includes(answer.data.role)) {
        await Gf.logout();
        return showLogin(t('console.login.wrong_role'));
      }
      await enter(answer.data);
    });
    $('logout').addEventListener('click', async () => {
      await Gf.logout();
      showLogin('');
    });
    Gf.confirming($('pause'), () => change('POST', '/api/admin/pause', { reason: $('pause-reason').value }, t('console.drill.paused_now')));
    $('resume').addEventListener('click', () =>
      change('POST', '/api/admin/resume', { reason: $('pause-reason').value }, t('console.drill.resumed_now')),
    );
    Gf.confirming($('freeze'), () =>
      change('POST', '/api/admin/freeze', { frozen: true, reason: $('freeze-reason').value }, t('console.freeze.frozen_now')),
    );
    Gf.confirming($('unfreeze'), () =>
      change('POST', '/api/admin/freeze', { frozen: false, reason: $('freeze-reason').value }, t('console.freeze.live_now')),
    );
    $('extend-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const minutes = Number($('extend-minutes').value);
      const answer = await change('POST', '/api/admin/extend', { minutes }, t('console.drill.extended', { minutes }));
      if (answer.ok) $('extend-form').reset();
    });
    $('announce-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = { title: $('announce-title').value };
      const titleZh = $('announce-title-zh').value.trim();
      const text = $('announce-body').value.trim();
      const textZh = $('announce-body-zh').value.trim();
      if (titleZh) body.title_zh = titleZh;
      if (text) body.body = text;
      if (textZh) body.body_zh = textZh;
      const answer = await change('POST', '/api/admin/announce', body, t('console.announce.posted'));
      if (answer.ok) $('announce-form').reset();
    });
    $('inject-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = {
        title: $('inject-title').value,
        body: $('inject-body').value,
        audience: $('inject-audience').value,
        deadline: new Date(Date.now() + Number($('inject-minutes').value) * 60000).toISOString(),
        rubric: rubricOf($('inject-rubric').value),
      };
      const titleZh = $('inject-title-zh').value.trim();
      const textZh = $('inject-body-zh').value.trim();
      if (titleZh) body.title_zh = titleZh;
      if (textZh) body.body_zh = textZh;
      const answer = await change('POST', '/api/admin/injects', body, t('console.injects.posted'));
      $('inject-error').textContent = answer.ok ? '' : Gf.errorText(answer);
      if (answer.ok) $('inject-form').reset();
    });
    Gf.confirming($('defect-mark'), async () => {
      const form = $('defect-form');
      if (!form.reportValidity()) return;
      const body = {
        tick: Number($('defect-tick').value),
        team: $('defect-team').value,
        service: $('defect-service').value,
        reason: $('defect-reason').value,
      };
      const answer = await change('POST', '/api/admin/defective', body, t('console.defects.marked'));
      if (answer.ok) $('defect-reason').value = '';
    });
    Gf.confirming($('team-token-run'), async () => {
      const body = { team: $('team-token-team').value, reason: $('team-token-reason').value };
      const answer = await change('POST', '/api/admin/teams/token', body, t('console.teams.issued_now'));
      const shown = $('team-token-issued');
      shown.hidden = !answer.ok;
      if (answer.ok) {
        shown.textContent = t('console.teams.issued', { team: answer.data.team, token: answer.data.token });
        $('team-token-reason').value = '';
      }
    });
    for (const [button, disabled] of [[$('team-disable'), true], [$('team-enable'), false]]) {
      Gf.confirming(button, async () => {
        const body = { team: $('team-token-team').value, disabled, reason: $('team-token-reason').value };
        const done = disabled ? 'console.teams.disabled_now' : 'console.teams.enabled_now';
        const answer = await change('POST', '/api/admin/teams/disable', body, t(done));
        if (answer.ok) $('team-token-reason').value = '';
      });
    }
    Gf.confirming($('pack-run'), async () => {
      if (!$('pack-form').reportValidity()) return;
      const team = $('team-token-team').value;
      const body = { team, web: $('pack-web').value };
      const submission = $('pack-submission').value.trim();
      if (submission) body.submission = submission;
      const answer = await api('POST', '/api/admin/teams/pack', body);
      if (!answer.ok || !(answer.data instanceof Blob)) return Gf.announce(Gf.errorText(answer));
      const link = $('pack-download');
      if (link.href) URL.revokeObjectURL(link.href);
      const file = `${team}-pack.tar.gz`;
      link.href = URL.createObjectURL(answer.data);
      link.download = file;
      link.textContent = t('console.pack.save', { file });
      link.hidden = false;
      link.click();
      Gf.announce(t('console.pack.made', { team }));
      await refresh();
    });
    // One CSV field: quoted when it holds a comma, a quote or a line break.
    const field = (text) => (/[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);
    async function importTeams(csv) {
      const answer = await change('POST', '/api/admin/teams/import', { csv }, '');
      if (!answer.ok) return false;
      Gf.announce(t('console.add.added', { teams: answer.data.added.join(', '), count: answer.data.teams }));
      return true;
    }
    Gf.confirming($('add-run'), async () => {
      if (!$('add-form').reportValidity()) return;
      const values = [$('add-slug').value, $('add-name').value, $('add-name-zh').value, $('add-role').value];
      const csv = `slug,name,name_zh,role\n${values.map((v) => field(v.trim())).join(',')}\n`;
      if (await importTeams(csv)) {
        for (const id of ['add-slug', 'add-name', 'add-name-zh']) $(id).value = '';
      }
    });
    Gf.confirming($('import-run'), async () => {
      const file = $('add-file').files[0];
      if (!file) return Gf.announce(t('console.add.no_file'));
      if (await importTeams(await file.text())) $('add-file').value = '';
    });
    Gf.confirming($('adjust-run'), async () => {
      if (!$('adjust-form').reportValidity()) return;
      const body = { team: $('adjust-team').value, points: Number($('adjust-points').value), reason: $('adjust-reason').value };
      const answer = await change('POST', '/api/admin/adjustments', body, t('console.adjust.done'));
      if (answer.ok) {
        $('adjust-points').value = '';
        $('adjust-reason').value = '';
      }
    });
    Gf.confirming($('control-run'), async () => {
      const action = $('control-action').value;
      const body = {
        team: $('control-team').value,
        service: $('control-service').value,
        action,
        reason: $('control-reason').value,
      };
      const done = action === 'reset' ? t('console.control.reset_done') : t('console.control.restart_done');
      const answer = await change('POST', '/api/admin/service', body, done);
      if (answer.ok) $('control-reason').value = '';
    });
    $('audit-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      loadAudit(false);
    });
    $('audit-older').addEventListener('click', () => loadAudit(true));
    $('logs-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      loadLogs();
    });
    Gf.onLang(render);
    Gf.follow((event) => {
      if (!state.me) return;
      switch (event.type) {
        case 'paused':
        case 'resumed':
        case 'extended':
        case 'board_frozen':
          loadDrill();
          break;
        case 'tick_closed':
          loadDrill();
          loadChecklist();
          break;
        case 'score_adjusted':
          loadAdjustments();
          break;
        case 'scores_updated':
          loadDefects();
          break;
        case 'announcement':
          loadAnnouncements();
          break;
        default:
          break;
      }
    });
  }

  document.addEventListener('DOMContentLoaded', async () => {
    await Gf.start();
    wire();
    // Teams usually reach the web where the organisers do; the field says so until changed.
    $('pack-web').value = window.location.origin;
    $('team-token-team').addEventListener('change', aarLinks);
    const me = await Gf.session();
    if (me && ['organiser', 'observer'].includes(me.role)) await enter(me);
    else showLogin('');
    // Wired and told who is logged in: tests wait for this before they type.
    document.body.dataset.ready = 'true';
  });
})();
