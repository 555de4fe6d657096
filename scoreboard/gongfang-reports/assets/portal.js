// The team portal: the team logs in with its token, then sees its services tick by tick with
// the checker's messages, its addresses, announcements as they are posted, and submits flags,
// files and follows reports, answers the organisers' tasks (injects), sends patches and rotates
// its token. It only ever asks for the
// team's own data: the server answers from the session, never from what the page names.
'use strict';

(() => {
  const { $, t, msg, el, api } = Gf;
  const state = { me: null, portal: null, targets: null, reports: [], patches: [], announcements: [], answers: [], injects: [], drafts: {} };

  // The submission server's answers (stable, for teams' farms), in the chosen language.
  const FLAG_ANSWERS = {
    Accepted: 'portal.flags.accepted',
    'Denied: flag already submitted': 'portal.flags.duplicate',
    'Denied: flag is your own': 'portal.flags.own',
    'Denied: flag is too old': 'portal.flags.old',
    'Denied: invalid flag': 'portal.flags.invalid',
  };

  function showLogin(error) {
    // Nothing of the team's is asked for again until someone logs in: a page whose session
    // ended must not keep sending the dead cookie on every live event.
    state.portal = null;
    $('app').hidden = true;
    $('logout').hidden = true;
    $('login-section').hidden = false;
    $('login-error').textContent = error || '';
  }

  function verdictCell(verdict) {
    const node = el('span', msg(`verdict.${verdict || 'none'}`), `verdict v-${verdict || 'none'}`);
    return node;
  }

  function renderServices() {
    const p = state.portal;
    const box = $('services');
    box.replaceChildren();
    for (const s of p.services) {
      const card = el('article', null, 'card');
      const heading = el('h3', Gf.name(s.name));
      card.append(heading);
      const latest = s.ticks[0];
      const status = el('p');
      status.append(el('span', t('portal.services.now')), ' ', verdictCell(latest && latest.verdict));
      card.append(status);
      const table = el('table');
      const head = el('tr');
      head.append(el('th', t('common.tick')), el('th', t('portal.services.verdict')), el('th', t('portal.services.messages')));
      head.querySelectorAll('th').forEach((th) => th.setAttribute('scope', 'col'));
      const thead = el('thead');
      thead.append(head);
      const body = el('tbody');
      for (const tick of s.ticks) {
        const row = el('tr');
        const messages = el('td', tick.messages.join(' · ') || '—');
        row.append(el('td', tick.tick), el('td'), messages);
        row.children[1].append(verdictCell(tick.verdict));
        body.append(row);
      }
      if (s.ticks.length === 0) {
        const row = el('tr');
        const cell = el('td', t('portal.services.no_ticks'));
        cell.colSpan = 3;
        row.append(cell);
        body.append(row);
      }
      table.append(thead, body);
      card.append(table);
      box.append(card);
    }
  }

  function renderTargets() {
    const body = $('targets');
    body.replaceChildren();
    if (!state.targets) return;
    const services = new Map((state.targets.services || []).map((s) => [s.slug, s]));
    for (const team of state.targets.teams || []) {
      for (const [slug, target] of Object.entries(team.services)) {
        const row = el('tr', null, team.id === state.portal.team.id ? 'own' : '');
        const teamName = Gf.lang() === 'zh-HK' && team.name_zh ? team.name_zh : team.name;
        const service = services.get(slug);
        const serviceName = service ? Gf.name({ en: service.name, zh: service.name_zh }) : slug;
        row.append(el('td', team.id === state.portal.team.id ? `${teamName} (${t('portal.targets.you')})` : teamName));
        row.append(el('td', serviceName), el('td', target.addresses.join(', ') || '—'));
        body.append(row);
      }
    }
  }

  function renderAnnouncements() {
    const list = $('announcements');
    list.replaceChildren();
    if (state.announcements.length === 0) list.append(el('li', t('common.no_announcements'), 'muted'));
    for (const a of state.announcements) {
      const item = el('li');
      const zh = Gf.lang() === 'zh-HK';
      item.append(el('strong', (zh && a.title_zh) || a.title));
      const body = (zh && a.body_zh) || a.body;
      if (body) item.append(el('p', body));
      item.append(el('small', Gf.time(a.posted_at), 'muted'));
      list.append(item);
    }
  }

  // The organisers' tasks: each with its deadline and rubric, then the team's answer (late or
  // not, graded or not) or a form to answer it.
  function renderInjects() {
    const list = $('injects');
    list.replaceChildren();
    $('injects-section').hidden = state.injects.length === 0;
    const zh = Gf.lang() === 'zh-HK';
    for (const i of state.injects) {
      const item = el('li', null, 'card');
      item.dataset.inject = String(i.id);
      item.append(el('h3', (zh && i.title_zh) || i.title));
      const due = new Date(i.deadline) < new Date() ? 'portal.injects.due_passed' : 'portal.injects.due';
      item.append(el('p', t(due, { deadline: Gf.time(i.deadline) }), 'muted'));
      item.append(el('p', (zh && i.body_zh) || i.body, 'pre'));
      const rubric = el('ul');
      for (const c of i.rubric) rubric.append(el('li', t('portal.injects.criterion', { name: (zh && c.name_zh) || c.name, points: c.max_points })));
      item.append(rubric);
      if (i.answer) {
        const a = i.answer;
        const note = el('p', t(a.late ? 'portal.injects.answered_late' : 'portal.injects.answered', { at: Gf.time(a.answered_at) }), a.late ? 'error' : 'notice');
        note.dataset.late = String(a.late);
        item.append(note, el('p', a.text, 'pre'));
        if (a.grade) {
          const g = el('p', t('portal.injects.graded', { total: a.grade.total, max: i.max_points, reason: a.grade.reason || '—' }), 'notice');
          g.dataset.grade = String(a.grade.total);
          item.append(g);
        }
      } else {
        const form = el('form', null, 'grid');
        const area = el('textarea');
        area.rows = 4;
        area.maxLength = 8000;
        area.required = true;
        area.id = `inject-text-${i.id}`;
        // What the team is typing survives the page being drawn again.
        area.value = state.drafts[i.id] || '';
        area.addEventListener('input', () => {
          state.drafts[i.id] = area.value;
        });
        const label = el('label', t('portal.injects.answer'));
        label.htmlFor = area.id;
        const send = el('button', t('portal.injects.send'));
        send.type = 'submit';
        const error = el('p', '', 'error');
        error.setAttribute('role', 'alert');
        form.append(label, area, el('span'), send, el('span'), error);
        form.addEventListener('submit', async (ev) => {
          ev.preventDefault();
          const answer = await api('POST', `/api/portal/injects/${i.id}/answer`, { text: area.value });
          if (!answer.ok) {
            error.textContent = Gf.errorText(answer);
            return;
          }
          delete state.drafts[i.id];
          Gf.announce(t(answer.data.late ? 'portal.injects.sent_late' : 'portal.injects.sent'));
          await loadInjects();
        });
        item.append(form);
      }
      list.append(item);
    }
  }

  function renderAnswers() {
    const body = $('flag-answers');
    body.replaceChildren();
    for (const a of state.answers) {
      const row = el('tr');
      const key = FLAG_ANSWERS[a.msg];
      row.append(el('td', a.flag, 'mono'), el('td', key ? msg(key) : a.msg));
      body.append(row);
    }
  }

  function renderReports() {
    const list = $('reports');
    list.replaceChildren();
    if (state.reports.length === 0) list.append(el('li', t('portal.reports.none'), 'muted'));
    for (const r of state.reports) {
      const item = el('li', null, 'card');
      item.append(el('h3', `#${r.id} · ${msg(`portal.reports.${r.kind}`)} · ${r.service}`));
      item.append(el('p', `${t('portal.reports.status')}: ${msg(`report.${r.status}`)} · ${t('portal.reports.points')}: ${r.points}`));
      item.append(el('p', r.technique));
      for (const ruling of r.rulings) {
        const verdict = ruling.valid ? t('portal.reports.valid') : t('portal.reports.invalid');
        item.append(el('p', `${t('portal.reports.ruling')}: ${verdict} (${ruling.points}) — ${ruling.reason}`));
      }
      if (r.can_appeal) {
        const form = el('form', null, 'inline');
        const id = `appeal-${r.id}`;
        const label = el('label', t('portal.reports.appeal_reason'));
        label.htmlFor = id;
        const input = el('input');
        input.id = id;
        input.required = true;
        const button = el('button', t('portal.reports.appeal'));
        button.type = 'submit';
        form.append(label, input, button);
        form.addEventListener('submit', async (ev) => {
          ev.preventDefault();
          const answer = await api('POST', `/api/reports/${r.id}/appeal`, { reason: input.value });
          Gf.announce(answer.ok ? t('portal.reports.appealed') : Gf.errorText(answer));
          await loadReports();
        });
        item.append(form);
      }
      list.append(item);
    }
  }

  function renderPatches() {
    const body = $('patches');
    body.replaceChildren();
    for (const p of state.patches) {
      const row = el('tr');
      row.append(el('td', p.version), el('td', p.service), el('td', p.status), el('td', p.message || ''));
      body.append(row);
    }
  }

  // The rows are made again only when the peers or the language change: the portal reloads
  // on every tick, and a new button would forget a first press waiting for its confirmation.
  let shownVpn = null;

  function renderVpn() {
    const peers = state.portal.vpn || [];
    const shown = JSON.stringify([Gf.lang(), peers]);
    if (shown === shownVpn) return;
    shownVpn = shown;
    $('vpn-section').hidden = peers.length === 0;
    const body = $('vpn-peers');
    body.replaceChildren();
    for (const peer of peers) {
      const row = el('tr');
      const button = el('button', t('portal.vpn.new', { peer: peer.peer }), 'danger');
      button.type = 'button';
      Gf.confirming(button, () => reissueVpn(peer.peer));
      const action = el('td');
      action.append(button);
      row.append(el('td', peer.peer), el('td', peer.address, 'mono'), el('td', Gf.time(peer.rotated_at || peer.issued_at)), action);
      body.append(row);
    }
  }

  async function reissueVpn(peer) {
    const answer = await api('POST', '/api/portal/vpn', { peer });
    if (!answer.ok) return Gf.announce(Gf.errorText(answer));
    const link = $('vpn-download');
    if (link.href) URL.revokeObjectURL(link.href);
    const name = `${state.portal.team.slug}-${peer}.conf`;
    link.href = URL.createObjectURL(new Blob([answer.data], { type: 'text/plain' }));
    link.download = name;
    link.textContent = t('portal.vpn.save', { file: name });
    link.hidden = false;
    link.click();
    Gf.announce(t('portal.vpn.issued', { peer }));
    await loadPortal();
  }

  function render() {
    if (!state.portal) return;
    const p = state.portal;
    $('drill-name').textContent = Gf.name(p.drill.name);
    $('team-name').textContent = Gf.name(p.team.name);
    $('team-role').textContent = msg(`role.${p.team.role}`);
    renderServices();
    renderTargets();
    renderAnnouncements();
    renderInjects();
    renderAnswers();
    renderReports();
    renderPatches();
    renderVpn();
  }

  async function loadPortal() {
    const answer = await api('GET', '/api/portal');
    if (answer.status === 401) return showLogin(t('portal.login.expired'));
    if (!answer.ok) return Gf.announce(Gf.errorText(answer));
    state.portal = answer.data;
    const services = state.portal.services;
    for (const select of [$('report-service'), $('patch-service')]) {
      const chosen = select.value;
      select.replaceChildren();
      for (const s of services) {
        if (select.id === 'patch-service' && s.patch_mode !== 'submit') continue;
        const option = el('option', Gf.name(s.name));
        option.value = s.slug;
        select.append(option);
      }
      // A refresh after a tick keeps what the team chose.
      if (chosen) select.value = chosen;
    }
    $('reports-section').hidden = !state.portal.reports;
    $('patches-section').hidden = !services.some((s) => s.patch_mode === 'submit');
    $('flags-section').hidden = state.portal.team.role === 'defender';
    render();
  }

  async function loadTargets() {
    const answer = await api('GET', '/api/attack-info');
    if (answer.ok) state.targets = answer.data;
    renderTargets();
  }

  async function loadAnnouncements() {
    const answer = await api('GET', '/api/announcements');
    if (answer.ok) state.announcements = answer.data;
    renderAnnouncements();
  }

  async function loadInjects() {
    const answer = await api('GET', '/api/portal/injects');
    if (!answer.ok) return;
    // Drawn again only when something changed, so a refresh after a tick leaves a form alone.
    if (JSON.stringify(answer.data) === JSON.stringify(state.injects)) return;
    state.injects = answer.data;
    renderInjects();
  }

  async function loadReports() {
    if (!state.portal || !state.portal.reports) return;
    const answer = await api('GET', '/api/reports');
    if (answer.ok) state.reports = answer.data.reports || answer.data;
    renderReports();
  }

  async function loadPatches() {
    if ($('patches-section').hidden) return;
    const answer = await api('GET', '/api/patches');
    if (answer.ok) state.patches = answer.data.patches || answer.data;
    renderPatches();
  }

  async function enter(me) {
    state.me = me;
    $('login-section').hidden = true;
    $('app').hidden = false;
    $('logout').hidden = false;
    await loadPortal();
    await Promise.all([loadTargets(), loadAnnouncements(), loadInjects(), loadReports(), loadPatches()]);
  }

  function localToIso(value) {
    // datetime-local has no zone; the drill runs in Hong Kong time (UTC+8, no daylight saving).
    return value ? new Date(`${value.length === 16 ? `${value}:00` : value}+08:00`).toISOString() : null;
  }

  function wire() {
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const answer = await Gf.login({ team_token: $('login-token').value.trim() });
      $('login-token').value = '';
      if (!answer.ok) return showLogin(Gf.errorText(answer));
      if (answer.data.role !== 'team') {
        await Gf.logout();
        return showLogin(t('portal.login.teams_only'));
      }
      await enter(answer.data);
    });
    $('logout').addEventListener('click', async () => {
      await Gf.logout();
      state.portal = null;
      showLogin('');
    });
    $('flags-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const flags = $('flags').value.split('\n').map((f) => f.trim()).filter(Boolean);
      if (flags.length === 0) return;
      const answer = await api('PUT', '/flags', flags);
      if (!answer.ok) return Gf.announce(Gf.errorText(answer));
      state.answers = answer.data;
      $('flags').value = '';
      renderAnswers();
      Gf.announce(t('portal.flags.done', { count: flags.length }));
    });
    $('report-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const kind = $('report-kind').value;
      const report = {
        kind,
        service: $('report-service').value,
        from: localToIso($('report-from').value),
        to: localToIso($('report-to').value),
        technique: $('report-technique').value,
        description: $('report-description').value,
      };
      if (kind === 'attack') report.target_team = $('report-target').value.trim();
      const evidence = $('report-evidence').value.trim();
      if (evidence) report.evidence = evidence;
      const form = new FormData();
      form.append('report', new Blob([JSON.stringify(report)], { type: 'application/json' }));
      for (const file of $('report-files').files) form.append('evidence', file, file.name);
      const answer = await api('POST', '/api/reports', form);
      if (!answer.ok) {
        // The message names every problem with its field.
        $('report-error').textContent = Gf.errorText(answer);
        return;
      }
      $('report-error').textContent = '';
      $('report-form').reset();
      Gf.announce(t('portal.reports.filed', { id: answer.data.id }));
      await loadReports();
    });
    $('patch-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const file = $('patch-file').files[0];
      if (!file) return;
      const service = encodeURIComponent($('patch-service').value);
      const answer = await api('POST', `/api/patches?service=${service}`, file);
      $('patch-error').textContent = answer.ok ? '' : Gf.errorText(answer);
      if (answer.ok) Gf.announce(t('portal.patches.sent'));
      await loadPatches();
    });
    Gf.confirming($('rotate-token'), async () => {
      const answer = await api('POST', '/api/portal/token');
      if (!answer.ok) return Gf.announce(Gf.errorText(answer));
      $('new-token-value').textContent = answer.data.token;
      $('new-token').hidden = false;
      $('app').querySelectorAll('form').forEach((f) => f.setAttribute('inert', ''));
      Gf.announce(t('portal.token.rotated'));
    });
    Gf.onLang(render);
    Gf.follow((event) => {
      if (!state.portal) return;
      switch (event.type) {
        case 'announcement':
          loadAnnouncements();
          Gf.announce(`${t('common.new_announcement')}: ${(Gf.lang() === 'zh-HK' && event.title_zh) || event.title}`);
          break;
        case 'tick_closed':
          // New tasks appear within a tick.
          loadInjects();
          loadPortal();
          loadTargets();
          break;
        case 'verdict_changed':
          loadPortal();
          loadTargets();
          break;
        case 'report_ruled':
          if (event.team === state.portal.team.id) loadReports();
          break;
        case 'paused':
          Gf.announce(t('common.paused'));
          break;
        case 'resumed':
          Gf.announce(t('common.resumed'));
          break;
        default:
          break;
      }
    });
  }

  document.addEventListener('DOMContentLoaded', async () => {
    await Gf.start();
    wire();
    const me = await Gf.session();
    if (me && me.role === 'team') await enter(me);
    else showLogin('');
    // Wired and told who is logged in: tests wait for this before they type.
    document.body.dataset.ready = 'true';
  });
})();
