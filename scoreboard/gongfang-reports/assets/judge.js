// The judges' workbench: a judge logs in with name and password, filters the queue (status,
// filing team, kind, age), opens a report and sees it beside what the platform recorded around
// its window (captures, checker verdict changes, the target's container logs), the suggested
// matches highlighted, then rules: valid or not, points within the scenario's maximum, reason
// codes and a reason. In a two-judge drill the same form records the judge's blind score (the
// other judge's stays hidden until both have scored), and a third judge decides a dispute.
// The appeal deadline of a ruled report is shown. Below, the organisers' injects with every
// team's answer (late ones marked), each graded once against its rubric. The API audits every
// score, ruling and grade under the logged-in account. Evidence images are shown only when the
// server found PNG or JPEG bytes; every other file is a download. In a drill scored by the
// rule-based preset the form asks, in place of points, for the finding: an attack's type and
// weakness, or the attack a defence answers (a capture beside the report or an attack report by
// number), its rubric shares and a bonus.
'use strict';

(() => {
  const { $, t, msg, el, api } = Gf;
  const state = { me: null, setup: null, queue: [], next: null, current: null, context: null, injects: [] };

  function showLogin(error) {
    state.me = null;
    $('app').hidden = true;
    $('logout').hidden = true;
    $('login-section').hidden = false;
    $('login-error').textContent = error || '';
    $('whoami').textContent = '';
  }

  function teamName(slug) {
    const team = state.setup && state.setup.teams.find((x) => x.slug === slug);
    return team ? Gf.name(team.name) : slug || '—';
  }

  function serviceName(slug) {
    const service = state.setup && state.setup.services.find((x) => x.slug === slug);
    return service ? Gf.name(service.name) : slug || '—';
  }

  function queuePath(after) {
    const q = new URLSearchParams();
    q.set('status', $('f-status').value);
    if ($('f-team').value) q.set('team', $('f-team').value);
    if ($('f-kind').value) q.set('kind', $('f-kind').value);
    const age = $('f-age').value;
    if (age) {
      const [which, minutes] = age.split(':');
      q.set(which === 'within' ? 'filed_within' : 'older_than', minutes);
    }
    q.set('limit', '50');
    if (after) q.set('after', after);
    return `/api/judge/workbench/queue?${q}`;
  }

  async function loadQueue(more) {
    const answer = await api('GET', queuePath(more ? state.next : null));
    if (answer.status === 401) return showLogin(t('console.login.expired'));
    if (!answer.ok) return Gf.announce(Gf.errorText(answer));
    state.queue = more ? state.queue.concat(answer.data) : answer.data;
    state.next = null;
    // The next page's start, from the `Link` the server sent (the list's last id works too).
    if (answer.data.length === 50) state.next = answer.data[answer.data.length - 1].id;
    renderQueue();
  }

  function renderQueue() {
    const body = $('queue');
    body.replaceChildren();
    for (const r of state.queue) {
      const row = el('tr');
      row.dataset.report = String(r.id);
      if (state.current && state.current.id === r.id) row.className = 'current';
      const open = el('button', t('judge.queue.open'));
      open.type = 'button';
      open.dataset.open = String(r.id);
      open.addEventListener('click', () => openReport(r.id));
      const target = r.kind === 'attack' ? `${teamName(r.target_team)} · ${serviceName(r.service)}` : serviceName(r.service);
      row.append(el('td', r.id), el('td', teamName(r.team)), el('td', msg(`judge.kind.${r.kind}`)), el('td', target));
      row.append(el('td', msg(`judge.status.${r.status}`)), el('td', Gf.time(r.filed_at)));
      const cell = el('td');
      cell.append(open);
      row.append(cell);
      body.append(row);
    }
    $('queue-empty').hidden = state.queue.length > 0;
    $('queue-more').hidden = !state.next;
  }

  async function openReport(id) {
    const [report, context] = await Promise.all([api('GET', `/api/judge/reports/${id}`), api('GET', `/api/judge/reports/${id}/context`)]);
    if (report.status === 401) return showLogin(t('console.login.expired'));
    if (!report.ok) return Gf.announce(Gf.errorText(report));
    state.current = report.data.report;
    state.context = context.ok ? context.data : report.data.context;
    $('report-area').hidden = false;
    renderReport();
    renderContext();
    renderQueue();
    $('rule-error').textContent = '';
    $('report-heading').focus();
    Gf.announce(t('judge.report.opened', { id }));
  }

  function fact(label, value) {
    const box = el('div');
    box.append(el('dt', label), el('dd', value));
    return box;
  }

  function findingText(f) {
    if (!f) return '';
    const rules = (state.setup && state.setup.rules) || { attack_types: [], rubric: [] };
    if (f.kind === 'attack') {
      const type = rules.attack_types.find((x) => x.slug === f.attack_type);
      return ' ' + t('judge.finding.attack', { type: type ? Gf.name(type.name) : f.attack_type, weakness: f.weakness });
    }
    const link = f.link.kind === 'attack'
      ? t('judge.finding.of_report', { report: f.link.report })
      : t('judge.finding.of_capture', { attacker: f.link.attacker, submitted: f.link.submitted });
    const rubric = Object.entries(f.rubric || {}).map(([slug, share]) => {
      const c = rules.rubric.find((x) => x.slug === slug);
      return `${c ? Gf.name(c.name) : slug} ${share}%`;
    }).join(', ') || '—';
    return ' ' + t('judge.finding.defence', { link, rubric, bonus: f.bonus || 0 });
  }

  // The finding's part of the form, under the rule-based preset: filled from the drill's tables
  // and, for a defence, the captures beside the report; what the judge typed is kept.
  function renderFinding() {
    const r = state.current;
    const rules = state.setup && state.setup.rules;
    const kind = rules && r ? r.kind : null;
    $('rule-points').parentElement.hidden = !!rules;
    document.querySelector('label[for="rule-points"]').hidden = !!rules;
    $('finding-attack').hidden = kind !== 'attack';
    $('finding-defence').hidden = kind !== 'defence';
    if (!kind) return;
    const types = $('rule-attack-type');
    const chosen = types.value;
    types.replaceChildren();
    for (const x of rules.attack_types) {
      const option = el('option', `${Gf.name(x.name)} (${x.points})`);
      option.value = x.slug;
      types.append(option);
    }
    if (chosen) types.value = chosen;
    const links = $('rule-link');
    const linked = links.value;
    links.replaceChildren();
    const byNumber = el('option', t('judge.finding.link_by_number'));
    byNumber.value = 'report';
    links.append(byNumber);
    const captures = (state.context && state.context.captures) || [];
    captures.forEach((c, i) => {
      const option = el('option', t('judge.finding.capture', {
        attacker: teamName(c.attacker), service: serviceName(c.service), store: c.store, planted: c.tick_planted, submitted: c.tick_submitted,
      }));
      option.value = `capture-${i}`;
      links.append(option);
    });
    if (linked && [...links.options].some((o) => o.value === linked)) links.value = linked;
    else if (captures.some((c) => c.suggested)) links.value = `capture-${captures.findIndex((c) => c.suggested)}`;
    const rubric = $('rule-rubric');
    const given = {};
    rubric.querySelectorAll('input').forEach((i) => {
      given[i.dataset.criterion] = i.value;
    });
    rubric.replaceChildren();
    for (const c of rules.rubric) {
      const id = `rule-rubric-${c.slug}`;
      const label = el('label', t('judge.finding.criterion', { name: Gf.name(c.name), max: c.max_share }));
      label.htmlFor = id;
      const input = el('input');
      input.id = id;
      input.type = 'number';
      input.min = '0';
      input.max = String(c.max_share);
      input.value = given[c.slug] || '0';
      input.dataset.criterion = c.slug;
      rubric.append(label, input);
    }
    $('rule-bonus').max = String(rules.max_bonus);
    $('rule-bonus-max').textContent = t('judge.rule.max', { max: rules.max_bonus });
  }

  // The finding the form records, or undefined when the drill is not scored by its tables.
  function formFinding(kind) {
    if (!(state.setup && state.setup.rules)) return undefined;
    if (kind === 'attack') {
      return { kind, attack_type: $('rule-attack-type').value, weakness: $('rule-weakness').value };
    }
    const picked = $('rule-link').value;
    const captures = (state.context && state.context.captures) || [];
    const link = picked === 'report'
      ? { kind: 'attack', report: Number($('rule-link-report').value) }
      : captures[Number(picked.replace('capture-', ''))].link;
    const rubric = {};
    $('rule-rubric').querySelectorAll('input').forEach((i) => {
      if (Number(i.value) > 0) rubric[i.dataset.criterion] = Number(i.value);
    });
    return { kind, link, rubric, bonus: Number($('rule-bonus').value) };
  }

  function renderReport() {
    const r = state.current;
    if (!r) return;
    $('report-area').dataset.report = String(r.id);
    $('report-heading').textContent = t('judge.report.heading', { id: r.id, kind: msg(`judge.kind.${r.kind}`) });
    $('report-heading').tabIndex = -1;
    const facts = $('report-facts');
    facts.replaceChildren(
      fact(t('judge.filter.team'), teamName(r.team)),
      fact(t('judge.col.target'), r.target_team ? teamName(r.target_team) : '—'),
      fact(t('common.service'), serviceName(r.service)),
      fact(t('judge.report.window'), `${Gf.time(r.from)} – ${Gf.time(r.to)}`),
      fact(t('judge.filter.status'), msg(`judge.status.${r.status}`)),
    );
    if (r.attack_id) facts.append(fact('ATT&CK', r.attack_id));
    if (r.traced_address) facts.append(fact(t('judge.report.traced'), `${r.traced_address} ${r.traced_team ? teamName(r.traced_team) : ''}`));
    $('report-technique').textContent = r.technique;
    $('report-description').textContent = r.description;
    $('report-evidence-text').textContent = r.evidence_text;
    const files = $('report-files');
    files.replaceChildren();
    for (const e of r.evidence) {
      const item = el('li', null, 'card');
      item.dataset.evidence = String(e.id);
      const link = el('a', `${e.file_name} (${e.content_type}, ${e.size} B)`);
      link.href = e.url;
      link.setAttribute('download', e.file_name);
      item.append(link);
      // Asked as an image only when the team said PNG or JPEG; the server shows it inline only
      // if its bytes agree, else the browser gets a download it will not draw.
      if (['image/png', 'image/jpeg'].includes(e.content_type) && e.view_url) {
        const img = el('img', null, 'evidence');
        img.alt = t('judge.report.image_alt', { name: e.file_name });
        img.src = e.view_url;
        img.dataset.inline = 'true';
        item.append(img);
      }
      files.append(item);
    }
    const scores = $('report-scores');
    scores.replaceChildren();
    for (const x of r.scores || []) {
      const p = el('p', null, 'notice');
      p.dataset.score = x.judge;
      p.textContent = t('judge.report.score', {
        judge: x.judge,
        verdict: x.valid ? t('judge.rule.is_valid') : t('judge.rule.is_invalid'),
        points: x.points,
        codes: (x.reason_codes || []).map((c) => msg(`judge.code.${c}`)).join(', ') || '—',
        reason: x.reason || '—',
      }) + findingText(x.finding);
      scores.append(p);
    }
    const mine = (r.scores || []).some((x) => state.setup && x.judge === state.setup.judge);
    const panel = $('report-panel');
    const panelText = r.status === 'disputed'
      ? t(mine ? 'judge.panel.disputed_mine' : 'judge.panel.disputed')
      : r.status === 'pending' && mine
        ? t('judge.panel.scored')
        : r.status === 'pending' && r.hidden_scores
          ? t('judge.panel.hidden', { count: r.hidden_scores })
          : '';
    panel.hidden = !panelText;
    panel.textContent = panelText;
    const rulings = $('report-rulings');
    rulings.replaceChildren();
    for (const x of r.rulings) {
      const p = el('p', null, 'notice');
      p.dataset.ruling = x.stage;
      const codes = (x.reason_codes || []).map((c) => msg(`judge.code.${c}`)).join(', ');
      p.textContent = t('judge.report.ruling', {
        stage: msg(`judge.stage.${x.stage}`),
        verdict: x.valid ? t('judge.rule.is_valid') : t('judge.rule.is_invalid'),
        points: x.points,
        judge: x.judge || '',
        codes: codes || '—',
        reason: x.reason || '—',
      }) + findingText(x.finding);
      rulings.append(p);
    }
    $('report-appeal').hidden = !r.appeal;
    if (r.appeal) $('report-appeal').textContent = t('judge.report.appeal', { reason: r.appeal.reason });
    const deadline = $('report-deadline');
    deadline.hidden = !r.appeal_deadline || r.appeal;
    if (r.appeal_deadline) {
      const key = r.can_appeal ? 'judge.report.appeal_open' : 'judge.report.appeal_closed';
      deadline.textContent = t(key, { deadline: Gf.time(r.appeal_deadline) });
    }
    // A judge scores a report once, and decides only a dispute between others' scores.
    const open = (r.status === 'pending' || r.status === 'disputed' || r.status === 'appealed') && !mine;
    $('ruling-form').hidden = !open;
    const blind = r.status === 'pending' && state.setup && state.setup.judges === 2;
    const form = blind ? 'score' : r.status === 'disputed' ? 'decide' : r.status === 'appealed' ? 'appeal' : 'rule';
    $('ruling-form').dataset.form = form;
    $('rule-heading').textContent = t(`judge.form.${form}.heading`);
    $('rule-submit').textContent = t(`judge.form.${form}.submit`);
    const max = state.setup ? state.setup.max_points[r.kind] : 0;
    $('rule-points').max = String(max);
    $('rule-max').textContent = t('judge.rule.max', { max });
    renderFinding();
  }

  function renderContext() {
    const c = state.context;
    if (!c) return;
    $('context-span').textContent = t('judge.context.span', { from: Gf.time(c.searched_from), to: Gf.time(c.searched_to) });
    const s = $('suggestion');
    s.dataset.strength = c.suggestion.strength;
    s.textContent = `${msg(`judge.strength.${c.suggestion.strength}`)} — ${c.suggestion.summary}`;
    const caps = $('captures');
    caps.replaceChildren();
    for (const x of c.captures) {
      const row = el('tr', null, x.suggested ? 'suggested' : '');
      row.dataset.capture = x.suggested ? 'suggested' : 'context';
      row.append(el('td', Gf.time(x.submitted_at)), el('td', teamName(x.attacker)), el('td', teamName(x.victim)));
      row.append(el('td', `${x.tick_planted} → ${x.tick_submitted}`), el('td', x.suggested ? t('judge.context.suggested') : ''));
      caps.append(row);
    }
    $('captures-none').hidden = c.captures.length > 0;
    $('captures-more').hidden = !c.captures_truncated;
    const verdicts = $('verdicts');
    verdicts.replaceChildren();
    for (const v of c.verdict_changes) {
      const item = el('li', null, v.suggested ? 'suggested' : '');
      item.dataset.verdict = v.to;
      item.append(el('span', `${Gf.time(v.at)} · ${t('common.tick')} ${v.tick} `));
      item.append(el('span', msg(`verdict.${v.to}`), `verdict v-${v.to}`));
      if (v.message) item.append(el('span', ` ${v.message}`, 'muted'));
      if (v.suggested) item.append(el('strong', ` ${t('judge.context.suggested')}`));
      verdicts.append(item);
    }
    $('verdicts-none').hidden = c.verdict_changes.length > 0;
    $('logs').textContent = c.logs.map((l) => `${l.at} ${l.container} ${l.line}`).join('\n');
    $('logs').hidden = c.logs.length === 0;
    $('logs-note').textContent = c.logs_error || c.logs_notice || (c.logs.length ? '' : t('judge.context.no_logs'));
    renderFinding();
  }

  // One answer: its team, time and text, then its grade or the form to grade it.
  function answerItem(inject, a) {
    const zh = Gf.lang() === 'zh-HK';
    const item = el('li', null, 'card');
    item.dataset.answer = a.team;
    const when = t(a.late ? 'judge.injects.late' : 'judge.injects.on_time', { at: Gf.time(a.answered_at) });
    item.append(el('strong', teamName(a.team)), ' ', el('span', when, a.late ? 'error' : 'muted'));
    item.append(el('p', a.text, 'pre'));
    if (a.grade) {
      const g = el('p', t('judge.injects.graded', { total: a.grade.total, max: inject.max_points, judge: a.grade.judge || '', reason: a.grade.reason || '—' }), 'notice');
      g.dataset.grade = String(a.grade.total);
      item.append(g);
      return item;
    }
    const form = el('form', null, 'grid');
    form.dataset.gradeForm = a.team;
    const inputs = [];
    for (const c of inject.rubric) {
      const input = el('input');
      input.type = 'number';
      input.min = '0';
      input.max = String(c.max_points);
      input.value = '0';
      input.required = true;
      input.id = `grade-${inject.id}-${a.team}-${inputs.length}`;
      input.dataset.criterion = c.name;
      const label = el('label', t('judge.injects.criterion', { name: (zh && c.name_zh) || c.name, points: c.max_points }));
      label.htmlFor = input.id;
      form.append(label, input);
      inputs.push(input);
    }
    const reason = el('textarea');
    reason.rows = 2;
    reason.maxLength = 2000;
    reason.id = `grade-${inject.id}-${a.team}-reason`;
    const reasonLabel = el('label', t('judge.injects.reason'));
    reasonLabel.htmlFor = reason.id;
    const send = el('button', t('judge.injects.grade'));
    send.type = 'submit';
    const error = el('p', '', 'error');
    error.setAttribute('role', 'alert');
    form.append(reasonLabel, reason, el('span'), send, el('span'), error);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!form.reportValidity()) return;
      const points = {};
      for (const input of inputs) points[input.dataset.criterion] = Number(input.value);
      const answer = await api('POST', `/api/judge/injects/${inject.id}/grade`, { team: a.team, points, reason: reason.value });
      if (!answer.ok) {
        error.textContent = Gf.errorText(answer);
        return;
      }
      Gf.announce(t('judge.injects.done', { team: teamName(a.team) }));
      await loadInjects();
    });
    item.append(form);
    return item;
  }

  function renderInjects() {
    const list = $('injects');
    list.replaceChildren();
    $('injects-none').hidden = state.injects.length > 0;
    const zh = Gf.lang() === 'zh-HK';
    for (const i of state.injects) {
      const item = el('li', null, 'card');
      item.dataset.inject = String(i.id);
      item.append(el('h3', (zh && i.title_zh) || i.title));
      item.append(el('p', t('judge.injects.deadline', { deadline: Gf.time(i.deadline), count: i.answers.length }), 'muted'));
      item.append(el('p', (zh && i.body_zh) || i.body, 'pre'));
      const answers = el('ul', null, 'cards');
      for (const a of i.answers) answers.append(answerItem(i, a));
      item.append(answers);
      list.append(item);
    }
  }

  async function loadInjects() {
    const answer = await api('GET', '/api/judge/injects');
    if (answer.ok) state.injects = answer.data;
    renderInjects();
  }

  function renderCodes() {
    const box = $('rule-codes');
    const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
    box.replaceChildren();
    for (const code of (state.setup && state.setup.reason_codes) || []) {
      const label = el('label');
      const input = el('input');
      input.type = 'checkbox';
      input.value = code;
      input.dataset.code = code;
      input.checked = checked.has(code);
      label.append(input, ' ', el('span', msg(`judge.code.${code}`)));
      box.append(label);
    }
  }

  function render() {
    renderCodes();
    renderQueue();
    renderReport();
    renderContext();
    renderInjects();
    if (state.me) $('whoami').textContent = `${state.me.name} · ${msg(`role.${state.me.role}`)}`;
  }

  async function enter(me) {
    state.me = me;
    $('login-section').hidden = true;
    $('app').hidden = false;
    $('logout').hidden = false;
    const setup = await api('GET', '/api/judge/workbench');
    if (!setup.ok) return showLogin(Gf.errorText(setup));
    state.setup = setup.data;
    const teams = $('f-team');
    teams.replaceChildren(teams.firstElementChild);
    for (const team of state.setup.teams) {
      const option = el('option', Gf.name(team.name));
      option.value = team.slug;
      teams.append(option);
    }
    render();
    await Promise.all([loadQueue(false), loadInjects()]);
  }

  async function rule(ev) {
    ev.preventDefault();
    const r = state.current;
    if (!r || !$('ruling-form').reportValidity()) return;
    const valid = $('rule-valid').checked;
    const body = {
      valid,
      points: valid ? Number($('rule-points').value) : 0,
      reason: $('rule-reason').value,
      reason_codes: [...$('rule-codes').querySelectorAll('input:checked')].map((i) => i.value),
    };
    // Under the preset's tables a valid ruling records its finding, and points are theirs.
    const finding = valid ? formFinding(r.kind) : undefined;
    if (finding) {
      body.finding = finding;
      body.points = 0;
    }
    const path = r.status === 'appealed' ? `/api/judge/reports/${r.id}/appeal-ruling` : `/api/judge/reports/${r.id}/ruling`;
    const answer = await api('POST', path, body);
    if (!answer.ok) {
      $('rule-error').textContent = Gf.errorText(answer);
      return;
    }
    state.current = answer.data;
    $('rule-reason').value = '';
    $('rule-weakness').value = '';
    $('rule-link-report').value = '';
    $('rule-bonus').value = '0';
    $('rule-rubric').replaceChildren();
    $('rule-codes').querySelectorAll('input').forEach((i) => {
      i.checked = false;
    });
    renderReport();
    const done = answer.data.status === 'pending' ? 'judge.rule.scored' : answer.data.status === 'disputed' ? 'judge.rule.disputed' : 'judge.rule.done';
    Gf.announce(t(done, { id: r.id }));
    await loadQueue(false);
  }

  function wire() {
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const answer = await Gf.login({ name: $('login-name').value.trim(), password: $('login-password').value });
      $('login-password').value = '';
      if (!answer.ok) return showLogin(Gf.errorText(answer));
      if (answer.data.role !== 'judge') {
        await Gf.logout();
        return showLogin(t('judge.login.wrong_role'));
      }
      await enter(answer.data);
    });
    $('logout').addEventListener('click', async () => {
      await Gf.logout();
      showLogin('');
    });
    $('filters').addEventListener('submit', (ev) => {
      ev.preventDefault();
      loadQueue(false);
    });
    $('queue-more').addEventListener('click', () => loadQueue(true));
    $('ruling-form').addEventListener('submit', rule);
    $('rule-invalid').addEventListener('change', () => {
      $('rule-points').value = '0';
    });
    Gf.onLang(render);
  }

  document.addEventListener('DOMContentLoaded', async () => {
    await Gf.start();
    wire();
    const me = await Gf.session();
    if (me && me.role === 'judge') await enter(me);
    else showLogin('');
    // Wired and told who is logged in: tests wait for this before they type.
    document.body.dataset.ready = 'true';
  });
})();
