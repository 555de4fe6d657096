#!/usr/bin/env node
// DataBridge Consent Gateway (數據橋授權交換閘): citizens consent to departments sharing their data.
//
// Holder departments deposit records about citizens (a registered address, a driving licence
// record …); requesting departments ask a citizen for consent to read one kind of record from
// one holder, and once the citizen grants it they fetch the record through the gateway with
// their client credentials (HTTP Basic, or a bearer token from the client-credentials grant).
// Citizens see, grant, decline and revoke consents on bilingual pages and read the audit
// trail of every fetch. Departments use the JSON API.
//
// Node.js 18 built-ins only. Everything it writes lives under --data (default /tmp/consent),
// because the container's root filesystem is read-only:
//
//     DATA/state.json      a snapshot of every collection (written to a temporary file, renamed)
//     DATA/journal.jsonl   changes since the snapshot, one JSON line each, replayed on start
//
// Data older than --retention-minutes is deleted in the background so a long drill does not
// fill the small /tmp. Sessions and bearer tokens live in memory only and expire.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const path = require("path");

const MAX_BODY = 64 * 1024;
const PAGE_SIZE = 50;
const MAX_PAGE = 200;
// PBKDF2 with a small work factor: every department request with HTTP Basic verifies a
// secret, and a drill tick sends a few hundred of them to a 0.5-core container.
const PBKDF2_ROUNDS = 1000;
const SESSION_TTL = 8 * 3600 * 1000;
const TOKEN_TTL = 15 * 60 * 1000;
const MAX_SESSIONS = 20000;
const MAX_TOKENS = 20000;
const MAX_RECORDS_PER_HOLDER = 2000;
const MAX_RECORDS_PER_SUBJECT = 30;
const MAX_REQUESTS_PER_DEPARTMENT = 2000;
const MAX_PENDING_PER_CITIZEN = 50;
const MAX_CONSENTS_PER_CITIZEN = 200;
const MAX_AUDIT_PER_CITIZEN = 200;
const MAX_FIELDS = 16;
const MAX_DAYS = 365;
const DAY = 24 * 3600 * 1000;
const JOURNAL_COMPACT_BYTES = 512 * 1024;
// All collections together hold at most this many objects (about 5 MB of JSON): past it the
// oldest go first, so a flood of registrations between two sweeps cannot outgrow the heap,
// and a snapshot the gateway cannot load again never reaches the disk.
const MAX_OBJECTS = 15000;

const USERNAME_RE = /^[a-z0-9][a-z0-9._-]{2,31}$/;
const ROLES = ["holder", "requester"];

// The kinds of record the gateway exchanges; their names are in the message catalogue.
const RECORD_TYPES = [
  "address",
  "driving-licence",
  "tax-residency",
  "vaccination",
  "qualification",
  "property",
  "income",
  "marital-status",
];

// Clients the gateway knows from its configuration rather than from registration; they are
// not stored in the journal, so changing this list takes effect at the next start.
// demo-dept is the onboarding sandbox's client (the API guide at /docs gives its secret, so
// integrators can try the API before their own registration). It carries the service desk's
// `ops` role so that integrators can look at their own stuck consent requests.
const SEED_CLIENTS = [
  {
    client_id: "demo-dept",
    secret: "databridge-demo",
    name: "DataBridge Sandbox Department",
    name_zh: "數據橋沙盒部門",
    roles: ["holder", "requester", "ops"],
    enabled: true,
  },
];

// -- messages ----------------------------------------------------------------------------------

const MESSAGES = {
  en: {
    "brand": "DataBridge Consent Gateway",
    "brand.other": "數據橋授權交換閘",
    "lang.switch": "中文",
    "nav.home": "Home",
    "nav.consents": "My consents",
    "nav.records": "My records",
    "nav.audit": "Audit trail",
    "nav.docs": "For departments",
    "nav.login": "Log in",
    "nav.register": "Register",
    "nav.logout": "Log out",
    "footer": "A service of the Office of Data Exchange. Departments see your records only with your consent.",
    "home.title": "Your data, shared only with your consent",
    "home.intro": "Government departments hold records about you. Through DataBridge, another department can read one of them only after you consent, for the purpose it states and until the consent expires. You can revoke a consent at any time, and every fetch is in your audit trail.",
    "home.step1": "A department asks for your consent to read one kind of record from one holder.",
    "home.step2": "You read its purpose and grant the consent for as many days as you choose, or decline.",
    "home.step3": "The department fetches that record through the gateway; you see every fetch.",
    "home.welcome": "Welcome, {name}.",
    "home.pending": "Consent requests waiting for you: {n}",
    "login.title": "Log in",
    "login.failed": "Wrong user name or password.",
    "register.title": "Create an account",
    "register.done": "Your account is ready. Log in to continue.",
    "field.username": "User name",
    "field.password": "Password",
    "field.name": "Name in English",
    "field.name_zh": "Name in Chinese (optional)",
    "field.days": "Consent valid for (days)",
    "button.login": "Log in",
    "button.register": "Register",
    "button.approve": "Grant consent",
    "button.decline": "Decline",
    "button.revoke": "Revoke",
    "consents.title": "My consents",
    "consents.pending": "Waiting for your decision",
    "consents.none_pending": "No consent requests are waiting for you.",
    "consents.current": "Consents",
    "consents.none": "You have not granted any consent yet.",
    "consents.review": "Review",
    "col.id": "Reference",
    "col.requester": "Department asking",
    "col.holder": "Holder of the record",
    "col.type": "Record",
    "col.purpose": "Purpose",
    "col.expires": "Expires",
    "col.status": "Status",
    "col.when": "When",
    "col.event": "Event",
    "col.issued": "Issued",
    "col.details": "Details",
    "status.active": "Active",
    "status.revoked": "Revoked",
    "status.expired": "Expired",
    "status.pending": "Pending",
    "status.approved": "Granted",
    "status.declined": "Declined",
    "grant.title": "Consent request {id}",
    "grant.asks": "{requester} asks for your consent to read your {type} held by {holder}.",
    "grant.purpose": "Purpose stated by the department",
    "grant.suggested": "The department asks for {days} days; you may choose fewer.",
    "grant.decided": "You have already answered this request: {status}.",
    "grant.notice": "The department will be able to fetch this record until the consent expires or you revoke it.",
    "audit.title": "Audit trail",
    "audit.none": "Nothing has happened with your data yet.",
    "audit.fetch": "{requester} fetched your {type} from {holder}",
    "audit.grant": "You granted {requester} consent to read your {type}",
    "audit.decline": "You declined {requester}'s request for your {type}",
    "audit.revoke": "You revoked {requester}'s consent to read your {type}",
    "records.title": "Records held about me",
    "records.none": "No department has deposited a record about you yet.",
    "docs.title": "DataBridge API for departments",
    "docs.intro": "Departments register as clients and call the JSON API with their client credentials: HTTP Basic (client_id:client_secret) on every call, or a bearer token from POST /api/oauth/token (grant_type=client_credentials, valid 15 minutes).",
    "docs.holders": "Holder departments deposit records about citizens; requesting departments ask citizens for consent and then fetch those records through /api/exchange.",
    "docs.sandbox": "Sandbox: try the API before registering with client_id {id} and client_secret {secret}.",
    "docs.endpoints": "Endpoints",
    "docs.api.0": "Registers a department: {name, name_zh, roles: [holder, requester], contact} → client_id, client_secret",
    "docs.api.1": "grant_type=client_credentials → a bearer token",
    "docs.api.2": "The calling department",
    "docs.api.3": "The directory of departments",
    "docs.api.4": "The kinds of record the gateway exchanges",
    "docs.api.5": "Holder: deposits a record, {citizen, type, title, fields, reference, note}",
    "docs.api.6": "Holder: its records",
    "docs.api.7": "Holder: one of its records",
    "docs.api.8": "Anyone: is this record number genuine?",
    "docs.api.9": "Requester: asks a citizen for consent, {citizen, holder, type, purpose, purpose_zh, case_note, days}",
    "docs.api.10": "Requester: its consent requests",
    "docs.api.11": "Requester: the consents granted to it",
    "docs.api.12": "Requester: the record under a consent (record= picks one of several)",
    "error.title": "Something went wrong",
    "error.notfound": "There is no such page.",
    "error.csrf": "This form has expired. Go back, reload the page and try again.",
    "type.address": "registered residential address",
    "type.driving-licence": "driving licence record",
    "type.tax-residency": "tax residency certificate",
    "type.vaccination": "vaccination record",
    "type.qualification": "academic qualification record",
    "type.property": "property ownership record",
    "type.income": "income assessment",
    "type.marital-status": "marital status record",
  },
  "zh-HK": {
    "brand": "數據橋授權交換閘",
    "brand.other": "DataBridge Consent Gateway",
    "lang.switch": "English",
    "nav.home": "主頁",
    "nav.consents": "我的授權",
    "nav.records": "我的紀錄",
    "nav.audit": "查閱紀錄",
    "nav.docs": "部門專區",
    "nav.login": "登入",
    "nav.register": "登記",
    "nav.logout": "登出",
    "footer": "數據交換辦公室提供的服務。未經你授權，部門不能查閱你的紀錄。",
    "home.title": "你的數據，只在你同意後才會分享",
    "home.intro": "政府部門持有關於你的紀錄。透過數據橋，其他部門必須先取得你的授權，才可以按其述明的用途、在授權到期前查閱其中一項紀錄。你可以隨時撤回授權，每次查閱都會記錄在你的查閱紀錄中。",
    "home.step1": "部門請求你授權查閱某一持有部門的某一類紀錄。",
    "home.step2": "你細閱其用途，自行決定授權日數，或拒絕請求。",
    "home.step3": "部門經交換閘取得該紀錄；每次查閱你都看得到。",
    "home.welcome": "{name}，歡迎你。",
    "home.pending": "等待你回覆的授權請求：{n} 項",
    "login.title": "登入",
    "login.failed": "用戶名稱或密碼不正確。",
    "register.title": "開設帳戶",
    "register.done": "帳戶已開設，請登入繼續。",
    "field.username": "用戶名稱",
    "field.password": "密碼",
    "field.name": "英文姓名",
    "field.name_zh": "中文姓名（選填）",
    "field.days": "授權有效日數",
    "button.login": "登入",
    "button.register": "登記",
    "button.approve": "授權",
    "button.decline": "拒絕",
    "button.revoke": "撤回",
    "consents.title": "我的授權",
    "consents.pending": "等待你決定",
    "consents.none_pending": "沒有等待你回覆的授權請求。",
    "consents.current": "授權",
    "consents.none": "你尚未作出任何授權。",
    "consents.review": "查看",
    "col.id": "編號",
    "col.requester": "提出請求的部門",
    "col.holder": "紀錄持有部門",
    "col.type": "紀錄",
    "col.purpose": "用途",
    "col.expires": "到期",
    "col.status": "狀態",
    "col.when": "時間",
    "col.event": "事項",
    "col.issued": "發出日期",
    "col.details": "詳情",
    "status.active": "有效",
    "status.revoked": "已撤回",
    "status.expired": "已到期",
    "status.pending": "待回覆",
    "status.approved": "已授權",
    "status.declined": "已拒絕",
    "grant.title": "授權請求 {id}",
    "grant.asks": "{requester}請求你授權查閱由{holder}持有的{type}。",
    "grant.purpose": "部門述明的用途",
    "grant.suggested": "部門請求 {days} 日的授權；你可以選擇較短的日數。",
    "grant.decided": "你已回覆這項請求：{status}。",
    "grant.notice": "在授權到期或你撤回授權之前，該部門可以查閱這項紀錄。",
    "audit.title": "查閱紀錄",
    "audit.none": "你的數據暫時未有任何查閱或授權紀錄。",
    "audit.fetch": "{requester}向{holder}查閱了你的{type}",
    "audit.grant": "你授權{requester}查閱你的{type}",
    "audit.decline": "你拒絕了{requester}查閱你的{type}的請求",
    "audit.revoke": "你撤回了{requester}查閱你的{type}的授權",
    "records.title": "部門持有關於我的紀錄",
    "records.none": "暫時未有部門存入關於你的紀錄。",
    "docs.title": "數據橋部門應用程式介面",
    "docs.intro": "部門先登記成為用戶端，然後以用戶端憑證呼叫 JSON 介面：每次以 HTTP Basic（client_id:client_secret）驗證，或先向 POST /api/oauth/token 取得持有人權杖（grant_type=client_credentials，有效 15 分鐘）。",
    "docs.holders": "持有部門存入關於市民的紀錄；請求部門先取得市民授權，再經 /api/exchange 取得紀錄。",
    "docs.sandbox": "沙盒：登記前可使用 client_id {id} 及 client_secret {secret} 試用介面。",
    "docs.endpoints": "介面一覽",
    "docs.api.0": "登記部門：{name, name_zh, roles: [holder, requester], contact} → client_id, client_secret",
    "docs.api.1": "grant_type=client_credentials → 持有人權杖",
    "docs.api.2": "呼叫的部門",
    "docs.api.3": "部門目錄",
    "docs.api.4": "交換閘交換的紀錄類別",
    "docs.api.5": "持有部門：存入紀錄，{citizen, type, title, fields, reference, note}",
    "docs.api.6": "持有部門：其紀錄",
    "docs.api.7": "持有部門：其中一項紀錄",
    "docs.api.8": "任何人：核實紀錄編號是否真確",
    "docs.api.9": "請求部門：請求市民授權，{citizen, holder, type, purpose, purpose_zh, case_note, days}",
    "docs.api.10": "請求部門：其授權請求",
    "docs.api.11": "請求部門：獲授予的授權",
    "docs.api.12": "請求部門：按授權取得紀錄（以 record= 在多項紀錄中選取一項）",
    "error.title": "出現問題",
    "error.notfound": "找不到這個頁面。",
    "error.csrf": "表格已經過期，請返回上一頁，重新載入後再試。",
    "type.address": "登記住址",
    "type.driving-licence": "駕駛執照紀錄",
    "type.tax-residency": "稅務居民身份證明書",
    "type.vaccination": "疫苗接種紀錄",
    "type.qualification": "學歷資格紀錄",
    "type.property": "物業業權紀錄",
    "type.income": "入息評估紀錄",
    "type.marital-status": "婚姻狀況紀錄",
  },
};
const LANGS = Object.keys(MESSAGES);

// Every key in both catalogues, or the gateway refuses to start: a page must never show a key.
function checkCatalogues() {
  const [a, b] = LANGS;
  const missing = [
    ...Object.keys(MESSAGES[a]).filter((k) => !(k in MESSAGES[b])).map((k) => `${b}: ${k}`),
    ...Object.keys(MESSAGES[b]).filter((k) => !(k in MESSAGES[a])).map((k) => `${a}: ${k}`),
    ...RECORD_TYPES.filter((t) => !(`type.${t}` in MESSAGES[a])).map((t) => `${a}: type.${t}`),
  ];
  if (missing.length) throw new Error(`message catalogue keys missing: ${missing.join(", ")}`);
}

function t(lang, key, vars) {
  let text = MESSAGES[lang][key];
  for (const [name, value] of Object.entries(vars || {})) text = text.split(`{${name}}`).join(String(value));
  return text;
}

// -- errors and small helpers ------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message, headers) {
    super(message);
    this.status = status;
    this.headers = headers || {};
  }
}

function esc(s) {
  return String(s)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#x27;");
}

function iso(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function newId(prefix, taken) {
  for (;;) {
    const id = prefix + crypto.randomBytes(6).toString("hex").toUpperCase();
    if (!taken.has(id)) return id;
  }
}

function hashSecret(secret, salt) {
  return crypto.pbkdf2Sync(secret, salt, PBKDF2_ROUNDS, 32, "sha256").toString("hex");
}

function sameSecret(secret, salt, hash) {
  const a = Buffer.from(hashSecret(secret, salt), "hex");
  const b = Buffer.from(hash, "hex");
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

function text(body, name, max, opts) {
  const o = opts || {};
  let value = body[name];
  if (value === undefined || value === null) value = o.default === undefined ? "" : o.default;
  if (typeof value !== "string") throw new ApiError(400, `${name} must be a string`);
  if (!o.raw) value = value.trim();
  if (o.required !== false && !value) throw new ApiError(400, `${name} is required`);
  if (value.length > max) throw new ApiError(400, `${name} is longer than ${max} characters`);
  return value;
}

function integer(value, name, lo, hi, fallback) {
  if (value === undefined || value === null || value === "") return fallback;
  const n = typeof value === "number" ? value : Number(String(value).trim());
  if (!Number.isInteger(n) || n < lo || n > hi) throw new ApiError(400, `${name} must be a whole number from ${lo} to ${hi}`);
  return n;
}

function paging(query) {
  const limit = integer(query.get("limit"), "limit", 1, MAX_PAGE, PAGE_SIZE);
  const offset = integer(query.get("offset"), "offset", 0, 1e9, 0);
  return { limit, offset };
}

function page(list, query) {
  const { limit, offset } = paging(query);
  return { total: list.length, limit, offset, items: list.slice(offset, offset + limit) };
}

// The first words of a department's English name, for its client_id: "Road Licensing Office"
// becomes road-licensing-office.
function slug(name) {
  let out = "";
  for (const word of name.toLowerCase().split(/[^a-z0-9]+/)) {
    if (!word) continue;
    if (out && out.length + 1 + word.length > 24) break;
    out = out ? `${out}-${word.slice(0, 24)}` : word.slice(0, 24);
  }
  return out;
}

// -- storage -----------------------------------------------------------------------------------

const COLLECTIONS = ["citizens", "clients", "records", "requests", "consents", "audit"];

// Every collection in memory, each change appended to the journal as one line that puts or
// deletes one object by id. Replaying a line twice gives the same state, so a crash between
// writing a snapshot and emptying the journal loses nothing.
class Store {
  constructor(root, retentionMs) {
    this.root = path.resolve(root);
    this.snapshotPath = path.join(this.root, "state.json");
    this.journalPath = path.join(this.root, "journal.jsonl");
    this.retention = retentionMs;
    for (const c of COLLECTIONS) this[c] = new Map();
  }

  load() {
    fs.mkdirSync(this.root, { recursive: true });
    try {
      const snapshot = JSON.parse(fs.readFileSync(this.snapshotPath, "utf8"));
      for (const c of COLLECTIONS) for (const [id, v] of snapshot[c] || []) this[c].set(id, v);
    } catch (e) {
      if (e.code !== "ENOENT") process.stderr.write(`snapshot unreadable, starting from the journal: ${e.message}\n`);
    }
    let journal = "";
    try {
      journal = fs.readFileSync(this.journalPath, "utf8");
    } catch (e) {
      if (e.code !== "ENOENT") throw e;
    }
    for (const line of journal.split("\n")) {
      if (!line) continue;
      try {
        this.apply(JSON.parse(line));
      } catch (e) {
        // A torn last line from a crash mid-write: everything before it is intact.
        process.stderr.write(`skipping a broken journal line: ${e.message}\n`);
      }
    }
    this.journalBytes = Buffer.byteLength(journal);
    if (this.size() > MAX_OBJECTS) this.evict(this.size() - MAX_OBJECTS);
  }

  apply(entry) {
    const map = this[entry.c];
    if (!map || !COLLECTIONS.includes(entry.c)) return;
    if (entry.d) map.delete(entry.id);
    else map.set(entry.id, entry.v);
  }

  write(entry) {
    const line = JSON.stringify(entry) + "\n";
    try {
      fs.appendFileSync(this.journalPath, line);
    } catch (e) {
      if (e.code !== "ENOENT") throw e;
      // The data folder was wiped under us: make it again and keep going.
      fs.mkdirSync(this.root, { recursive: true });
      fs.appendFileSync(this.journalPath, line);
    }
    this.journalBytes += Buffer.byteLength(line);
    this.apply(entry);
  }

  put(c, id, v) {
    const fresh = !this[c].has(id);
    this.write({ c, id, v });
    if (fresh && this.size() > MAX_OBJECTS) this.evict(Math.ceil(MAX_OBJECTS / 10));
    return v;
  }

  size() {
    let n = 0;
    for (const c of COLLECTIONS) n += this[c].size;
    return n;
  }

  // Deletes the `n` oldest objects of all collections; each map keeps creation order.
  evict(n) {
    let evicted = 0;
    for (; evicted < n; evicted++) {
      let oldest = null;
      for (const c of COLLECTIONS) {
        const first = this[c].entries().next();
        if (!first.done && (!oldest || first.value[1].created < oldest[2])) oldest = [c, first.value[0], first.value[1].created];
      }
      if (!oldest) break;
      this.del(oldest[0], oldest[1]);
    }
    process.stderr.write(`the gateway is full: deleted the ${evicted} oldest objects\n`);
  }

  del(c, id) {
    this.write({ c, id, d: 1 });
  }

  compact() {
    const snapshot = {};
    for (const c of COLLECTIONS) snapshot[c] = [...this[c].entries()];
    const tmp = this.snapshotPath + ".tmp";
    fs.mkdirSync(this.root, { recursive: true });
    fs.writeFileSync(tmp, JSON.stringify(snapshot));
    fs.renameSync(tmp, this.snapshotPath);
    fs.writeFileSync(this.journalPath, "");
    this.journalBytes = 0;
  }

  // Deletes everything created before the retention window, then compacts when it helps.
  sweep(now) {
    const cutoff = now - this.retention;
    let deleted = 0;
    for (const c of COLLECTIONS) {
      for (const [id, v] of this[c]) {
        if (v.created < cutoff) {
          this.del(c, id);
          deleted++;
        }
      }
    }
    if (deleted > 0 || this.journalBytes > JOURNAL_COMPACT_BYTES) this.compact();
    return deleted;
  }
}

// -- the gateway's logic -----------------------------------------------------------------------

class Gateway {
  constructor(store) {
    this.store = store;
    this.sessions = new Map(); // token -> {username, created}
    this.tokens = new Map(); // bearer token -> {client_id, expires}
    this.csrfKey = crypto.randomBytes(32);
    this.seeds = new Map();
    for (const seed of SEED_CLIENTS) {
      if (!seed.enabled) continue;
      const salt = crypto.randomBytes(16).toString("hex");
      this.seeds.set(seed.client_id, {
        client_id: seed.client_id,
        name: seed.name,
        name_zh: seed.name_zh,
        roles: seed.roles.slice(),
        contact: "",
        salt,
        hash: hashSecret(seed.secret, salt),
        created: Date.now(),
        seed: true,
      });
    }
  }

  client(id) {
    return this.seeds.get(id) || this.store.clients.get(id) || null;
  }

  allClients() {
    return [...this.seeds.values(), ...this.store.clients.values()];
  }

  citizen(username) {
    return this.store.citizens.get(username) || null;
  }

  clientName(id, lang) {
    const c = this.client(id);
    if (!c) return id;
    return lang === "zh-HK" && c.name_zh ? c.name_zh : c.name;
  }

  // -- citizens --

  register(body) {
    const username = text(body, "username", 32).toLowerCase();
    const password = text(body, "password", 128, { raw: true });
    const name = text(body, "name", 80);
    const nameZh = text(body, "name_zh", 40, { required: false });
    if (!USERNAME_RE.test(username)) {
      throw new ApiError(400, "username must be 3-32 characters: a-z, 0-9, '.', '_' or '-', starting with a letter or digit");
    }
    if (password.length < 8) throw new ApiError(400, "password must be at least 8 characters");
    if (this.store.citizens.has(username)) throw new ApiError(409, `the username ${username} is taken`);
    const salt = crypto.randomBytes(16).toString("hex");
    const citizen = { username, name, name_zh: nameZh, salt, hash: hashSecret(password, salt), created: Date.now() };
    this.store.put("citizens", username, citizen);
    return { username, name, name_zh: nameZh };
  }

  login(body) {
    const username = text(body, "username", 32).toLowerCase();
    const password = text(body, "password", 128, { raw: true });
    const citizen = this.citizen(username);
    if (!citizen || !sameSecret(password, citizen.salt, citizen.hash)) throw new ApiError(401, "wrong username or password");
    if (this.sessions.size >= MAX_SESSIONS) this.expireSessions(Date.now(), true);
    const token = crypto.randomBytes(24).toString("hex");
    this.sessions.set(token, { username, created: Date.now() });
    return token;
  }

  sessionUser(token) {
    const s = token && this.sessions.get(token);
    if (!s) return null;
    if (s.created + SESSION_TTL < Date.now()) {
      this.sessions.delete(token);
      return null;
    }
    const citizen = this.citizen(s.username);
    if (!citizen) this.sessions.delete(token);
    return citizen;
  }

  csrf(token) {
    return crypto.createHmac("sha256", this.csrfKey).update(token || "").digest("hex").slice(0, 32);
  }

  expireSessions(now, oldestToo) {
    for (const [token, s] of this.sessions) if (s.created + SESSION_TTL < now) this.sessions.delete(token);
    for (const [token, v] of this.tokens) if (v.expires < now) this.tokens.delete(token);
    // Still full (a flood of logins): drop the oldest tenth, which Map order keeps first.
    if (oldestToo) {
      for (const map of [this.sessions, this.tokens]) {
        let n = Math.ceil(map.size / 10);
        for (const key of map.keys()) {
          if (n-- <= 0) break;
          map.delete(key);
        }
      }
    }
  }

  // -- departments --

  registerClient(body) {
    const name = text(body, "name", 120);
    const nameZh = text(body, "name_zh", 60, { required: false });
    const contact = text(body, "contact", 120, { required: false });
    let roles = body.roles === undefined ? ROLES.slice() : body.roles;
    if (!Array.isArray(roles) || roles.length === 0 || roles.some((r) => !ROLES.includes(r))) {
      throw new ApiError(400, `roles must be a list of ${ROLES.join(" and ")}`);
    }
    roles = ROLES.filter((r) => roles.includes(r));
    const base = slug(name) || "dept";
    let clientId;
    do clientId = `${base}-${crypto.randomBytes(3).toString("hex")}`;
    while (this.client(clientId));
    const secret = crypto.randomBytes(24).toString("base64url");
    const salt = crypto.randomBytes(16).toString("hex");
    const client = { client_id: clientId, name, name_zh: nameZh, roles, contact, salt, hash: hashSecret(secret, salt), created: Date.now() };
    this.store.put("clients", clientId, client);
    return { client_id: clientId, client_secret: secret, name, name_zh: nameZh, roles };
  }

  // The calling department from `Authorization: Basic …` or `Bearer …`; 401 otherwise.
  authenticate(header) {
    const challenge = { "WWW-Authenticate": 'Basic realm="DataBridge", Bearer' };
    const m = /^(Basic|Bearer)\s+(\S+)$/i.exec(header || "");
    if (!m) throw new ApiError(401, "send client credentials: HTTP Basic client_id:client_secret, or a bearer token", challenge);
    if (m[1].toLowerCase() === "bearer") {
      const tok = this.tokens.get(m[2]);
      const client = tok && tok.expires > Date.now() && this.client(tok.client_id);
      if (!client) throw new ApiError(401, "the bearer token is unknown or expired; get a new one from /api/oauth/token", challenge);
      return client;
    }
    const decoded = Buffer.from(m[2], "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    return this.checkClient(decoded.slice(0, colon), decoded.slice(colon + 1), challenge, colon);
  }

  checkClient(clientId, secret, challenge, colon) {
    const client = colon !== -1 && this.client(clientId);
    if (!client || !sameSecret(secret, client.salt, client.hash)) throw new ApiError(401, "wrong client_id or client_secret", challenge);
    return client;
  }

  issueToken(client) {
    if (this.tokens.size >= MAX_TOKENS) this.expireSessions(Date.now(), true);
    const token = crypto.randomBytes(24).toString("base64url");
    this.tokens.set(token, { client_id: client.client_id, expires: Date.now() + TOKEN_TTL });
    return { access_token: token, token_type: "Bearer", expires_in: TOKEN_TTL / 1000, scope: client.roles.join(" ") };
  }

  requireRole(client, role) {
    if (!client.roles.includes(role)) throw new ApiError(403, `client ${client.client_id} does not have the ${role} role`);
  }

  publicClient(c) {
    return { client_id: c.client_id, name: c.name, name_zh: c.name_zh, roles: c.roles.filter((r) => ROLES.includes(r)) };
  }

  // -- records --

  deposit(holder, body) {
    this.requireRole(holder, "holder");
    const citizenName = text(body, "citizen", 32).toLowerCase();
    const type = text(body, "type", 32);
    if (!RECORD_TYPES.includes(type)) throw new ApiError(400, `type must be one of ${RECORD_TYPES.join(", ")}`);
    if (!this.citizen(citizenName)) throw new ApiError(404, `no citizen ${citizenName} on the gateway`);
    const title = text(body, "title", 200, { required: false });
    const reference = text(body, "reference", 200, { required: false });
    const note = text(body, "note", 4000, { required: false });
    const fields = body.fields === undefined ? {} : body.fields;
    if (typeof fields !== "object" || fields === null || Array.isArray(fields)) throw new ApiError(400, "fields must be an object of strings");
    const keys = Object.keys(fields);
    if (keys.length > MAX_FIELDS) throw new ApiError(400, `a record has at most ${MAX_FIELDS} fields`);
    for (const k of keys) {
      if (k.length > 64 || typeof fields[k] !== "string" || fields[k].length > 500) {
        throw new ApiError(400, "fields must map names of up to 64 characters to strings of up to 500");
      }
    }
    let held = 0;
    let aboutSubject = 0;
    for (const r of this.store.records.values()) {
      if (r.holder !== holder.client_id) continue;
      held++;
      if (r.citizen === citizenName) aboutSubject++;
    }
    if (held >= MAX_RECORDS_PER_HOLDER) throw new ApiError(409, `a holder keeps at most ${MAX_RECORDS_PER_HOLDER} records`);
    if (aboutSubject >= MAX_RECORDS_PER_SUBJECT) throw new ApiError(409, `a holder keeps at most ${MAX_RECORDS_PER_SUBJECT} records about one citizen`);
    const id = newId("REC-", this.store.records);
    const record = {
      id,
      holder: holder.client_id,
      citizen: citizenName,
      type,
      title,
      fields: Object.fromEntries(keys.map((k) => [k, fields[k]])),
      reference,
      note,
      created: Date.now(),
    };
    return this.store.put("records", id, record);
  }

  recordView(r) {
    return {
      id: r.id,
      holder: r.holder,
      holder_name: this.clientName(r.holder, "en"),
      citizen: r.citizen,
      type: r.type,
      title: r.title,
      fields: r.fields,
      reference: r.reference,
      note: r.note,
      issued: iso(r.created),
    };
  }

  ownRecord(holder, id) {
    const r = this.store.records.get(id);
    if (!r || r.holder !== holder.client_id) throw new ApiError(404, `no record ${id} held by ${holder.client_id}`);
    return r;
  }

  // -- consent requests and consents --

  fileRequest(requester, body) {
    this.requireRole(requester, "requester");
    const citizenName = text(body, "citizen", 32).toLowerCase();
    const holderId = text(body, "holder", 48);
    const type = text(body, "type", 32);
    const purpose = text(body, "purpose", 500);
    const purposeZh = text(body, "purpose_zh", 300, { required: false });
    const caseNote = text(body, "case_note", 2000, { required: false });
    const days = integer(body.days, "days", 1, MAX_DAYS, 90);
    if (!RECORD_TYPES.includes(type)) throw new ApiError(400, `type must be one of ${RECORD_TYPES.join(", ")}`);
    const holder = this.client(holderId);
    if (!holder || !holder.roles.includes("holder")) throw new ApiError(404, `no holder department ${holderId}`);
    if (!this.citizen(citizenName)) throw new ApiError(404, `no citizen ${citizenName} on the gateway`);
    let filed = 0;
    let pending = 0;
    for (const q of this.store.requests.values()) {
      if (q.requester === requester.client_id) filed++;
      if (q.citizen === citizenName && q.status === "pending") pending++;
    }
    if (filed >= MAX_REQUESTS_PER_DEPARTMENT) throw new ApiError(409, `a department files at most ${MAX_REQUESTS_PER_DEPARTMENT} requests`);
    if (pending >= MAX_PENDING_PER_CITIZEN) throw new ApiError(409, `${citizenName} has ${MAX_PENDING_PER_CITIZEN} requests waiting already`);
    const id = newId("CRQ-", this.store.requests);
    const request = {
      id,
      requester: requester.client_id,
      citizen: citizenName,
      holder: holderId,
      type,
      purpose,
      purpose_zh: purposeZh,
      case_note: caseNote,
      days,
      status: "pending",
      consent: null,
      created: Date.now(),
    };
    return this.store.put("requests", id, request);
  }

  // What the requesting department sees of its request: everything, its case note too.
  requestView(q) {
    return {
      id: q.id,
      citizen: q.citizen,
      holder: q.holder,
      type: q.type,
      purpose: q.purpose,
      purpose_zh: q.purpose_zh,
      case_note: q.case_note,
      days: q.days,
      status: q.status,
      consent: q.consent,
      filed: iso(q.created),
      grant_url: `/grant/${q.id}`,
    };
  }

  // What the citizen sees: who asks, for what and why; the department's case note stays with it.
  citizenRequestView(q, lang) {
    return {
      id: q.id,
      requester: q.requester,
      requester_name: this.clientName(q.requester, lang),
      holder: q.holder,
      holder_name: this.clientName(q.holder, lang),
      type: q.type,
      purpose: lang === "zh-HK" && q.purpose_zh ? q.purpose_zh : q.purpose,
      days: q.days,
      status: q.status,
      consent: q.consent,
      filed: iso(q.created),
    };
  }

  citizenRequest(citizen, id) {
    const q = this.store.requests.get(id);
    if (!q || q.citizen !== citizen.username) throw new ApiError(404, `no consent request ${id} for you`);
    return q;
  }

  decide(citizen, id, approve, days) {
    const q = this.citizenRequest(citizen, id);
    if (q.status !== "pending") throw new ApiError(409, `request ${id} is ${q.status} already`);
    if (!approve) {
      this.store.put("requests", id, { ...q, status: "declined" });
      this.audit(citizen.username, "decline", q, null);
      return { request: id, status: "declined" };
    }
    const granted = integer(days, "days", 1, q.days, q.days);
    let held = 0;
    for (const c of this.store.consents.values()) if (c.citizen === citizen.username) held++;
    if (held >= MAX_CONSENTS_PER_CITIZEN) throw new ApiError(409, `you hold ${MAX_CONSENTS_PER_CITIZEN} consents; revoke some first`);
    const now = Date.now();
    const consentId = newId("CNS-", this.store.consents);
    const consent = {
      id: consentId,
      request: id,
      citizen: citizen.username,
      requester: q.requester,
      holder: q.holder,
      type: q.type,
      purpose: q.purpose,
      purpose_zh: q.purpose_zh,
      granted: now,
      expires: now + granted * DAY,
      revoked: null,
      created: now,
    };
    this.store.put("consents", consentId, consent);
    this.store.put("requests", id, { ...q, status: "approved", consent: consentId });
    this.audit(citizen.username, "grant", consent, consentId);
    return this.consentView(consent, "en");
  }

  consentStatus(c) {
    if (c.revoked) return "revoked";
    return c.expires <= Date.now() ? "expired" : "active";
  }

  consentView(c, lang) {
    return {
      id: c.id,
      request: c.request,
      citizen: c.citizen,
      requester: c.requester,
      requester_name: this.clientName(c.requester, lang),
      holder: c.holder,
      holder_name: this.clientName(c.holder, lang),
      type: c.type,
      purpose: lang === "zh-HK" && c.purpose_zh ? c.purpose_zh : c.purpose,
      status: this.consentStatus(c),
      granted: iso(c.granted),
      expires: iso(c.expires),
      revoked: c.revoked ? iso(c.revoked) : null,
    };
  }

  revoke(citizen, id) {
    const c = this.store.consents.get(id);
    if (!c || c.citizen !== citizen.username) throw new ApiError(404, `no consent ${id} of yours`);
    if (c.revoked) return this.consentView(c, "en");
    const revoked = this.store.put("consents", id, { ...c, revoked: Date.now() });
    this.audit(citizen.username, "revoke", c, id);
    return this.consentView(revoked, "en");
  }

  // A requesting department fetches a record under a consent. Without `record`, the holder's
  // newest record of the consented type; with it, that record (a holder may keep several of a
  // type: a renewed licence, a previous address).
  exchange(requester, consentId, recordId) {
    this.requireRole(requester, "requester");
    const consent = this.store.consents.get(consentId);
    if (!consent || consent.requester !== requester.client_id) throw new ApiError(404, `no consent ${consentId} granted to ${requester.client_id}`);
    const status = this.consentStatus(consent);
    if (status !== "active") throw new ApiError(403, `consent ${consentId} is ${status}`);
    let record = null;
    if (recordId) {
      record = this.store.records.get(recordId);
      // The consent covers one holder's records of one type.
      if (!record || record.holder !== consent.holder || record.type !== consent.type) {
        throw new ApiError(403, `record ${recordId} is outside the scope of consent ${consentId}`);
      }
    } else {
      for (const r of this.store.records.values()) {
        if (r.holder === consent.holder && r.type === consent.type && r.citizen === consent.citizen) {
          if (!record || r.created >= record.created) record = r;
        }
      }
      if (!record) throw new ApiError(404, `${consent.holder} holds no ${consent.type} record for this citizen`);
    }
    this.audit(consent.citizen, "fetch", consent, consentId, record.id);
    return { consent: consentId, record: this.recordView(record) };
  }

  audit(username, event, scope, consentId, recordId) {
    const mine = [];
    for (const [id, a] of this.store.audit) if (a.citizen === username) mine.push(id);
    // The trail keeps a citizen's newest entries.
    for (const id of mine.slice(0, Math.max(0, mine.length - MAX_AUDIT_PER_CITIZEN + 1))) this.store.del("audit", id);
    const id = newId("AUD-", this.store.audit);
    this.store.put("audit", id, {
      id,
      citizen: username,
      event,
      requester: scope.requester,
      holder: scope.holder,
      type: scope.type,
      consent: consentId,
      record: recordId || null,
      created: Date.now(),
    });
  }

  auditView(a, lang) {
    return {
      id: a.id,
      at: iso(a.created),
      event: a.event,
      requester: a.requester,
      requester_name: this.clientName(a.requester, lang),
      holder: a.holder,
      holder_name: this.clientName(a.holder, lang),
      type: a.type,
      consent: a.consent,
      record: a.record,
    };
  }

  listFor(map, pred) {
    const out = [];
    for (const v of map.values()) if (pred(v)) out.push(v);
    return out.reverse(); // newest first: maps keep insertion order
  }
}

// -- HTTP plumbing -----------------------------------------------------------------------------

const PAGE_CSS = `
:root { --ink: #14212b; --muted: #4a5b69; --brand: #0b5563; --line: #c5d0d8; --bg: #f3f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, "Noto Sans TC", "Microsoft JhengHei", sans-serif; color: var(--ink); background: var(--bg); line-height: 1.5; }
header { background: var(--brand); color: #fff; padding: .8em 2em; display: flex; flex-wrap: wrap; gap: 1em; align-items: baseline; }
header a { color: #fff; }
header .brand { font-weight: 700; font-size: 1.2em; text-decoration: none; }
header .other { opacity: .9; font-size: .9em; }
nav { margin-left: auto; display: flex; flex-wrap: wrap; gap: 1em; align-items: baseline; }
nav form { display: inline; }
nav button { background: none; border: 0; color: #fff; text-decoration: underline; font: inherit; cursor: pointer; padding: 0; }
main { padding: 1em 2em; max-width: 64em; }
table { border-collapse: collapse; background: #fff; width: 100%; margin: .5em 0 1.5em; }
th, td { border: 1px solid var(--line); padding: .35em .6em; text-align: left; vertical-align: top; }
td:first-child { white-space: nowrap; font-variant-numeric: tabular-nums; }
.muted, footer { color: var(--muted); }
footer { padding: 1em 2em; font-size: .9em; }
form.card, .card { background: #fff; border: 1px solid var(--line); padding: 1em; margin: 1em 0; max-width: 36em; }
label { display: block; margin: .5em 0 .2em; }
input, select { display: block; font: inherit; padding: .3em; width: 100%; max-width: 24em; }
button { font: inherit; padding: .35em 1em; margin-top: .8em; cursor: pointer; }
.error { color: #9b1c1c; font-weight: 600; }
.ok { color: #1d5b2a; font-weight: 600; }
:focus-visible { outline: 3px solid #e0a100; outline-offset: 2px; }
@media (prefers-reduced-motion: reduce) { * { transition: none !important; animation: none !important; } }
`;

function parseCookies(header) {
  const out = {};
  for (const part of (header || "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const declared = req.headers["content-length"];
    if (declared !== undefined && !(Number(declared) <= MAX_BODY)) {
      reject(new ApiError(413, `the body is larger than ${MAX_BODY} bytes`));
      return;
    }
    const chunks = [];
    let size = 0;
    let done = false;
    req.on("data", (chunk) => {
      if (done) return;
      size += chunk.length;
      if (size > MAX_BODY) {
        done = true;
        reject(new ApiError(413, `the body is larger than ${MAX_BODY} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (!done) resolve(Buffer.concat(chunks));
    });
    req.on("error", (e) => {
      if (!done) reject(e);
      done = true;
    });
  });
}

class Exchange {
  constructor(gateway, req, res) {
    this.gw = gateway;
    this.req = req;
    this.res = res;
    const url = new URL(req.url, "http://gateway.invalid");
    this.path = url.pathname;
    this.query = url.searchParams;
    this.cookies = parseCookies(req.headers.cookie);
    this.setCookies = [];
    this.lang = this.pickLang();
    this.body = null;
  }

  pickLang() {
    const asked = this.query.get("lang");
    if (asked) {
      const lang = asked.toLowerCase().startsWith("zh") ? "zh-HK" : "en";
      this.setCookies.push(`lang=${lang}; Path=/; Max-Age=31536000; SameSite=Strict`);
      return lang;
    }
    if (LANGS.includes(this.cookies.lang)) return this.cookies.lang;
    return /^\s*zh/i.test(this.req.headers["accept-language"] || "") ? "zh-HK" : "en";
  }

  async json() {
    const type = (this.req.headers["content-type"] || "").split(";")[0].trim().toLowerCase();
    // A cross-site form cannot send JSON without a CORS preflight, which this gateway never
    // answers: requiring it keeps the citizens' JSON API safe from forged requests.
    if (type !== "application/json") throw new ApiError(415, "send the body as application/json");
    const raw = await readBody(this.req);
    let body;
    try {
      body = raw.length ? JSON.parse(raw.toString("utf8")) : {};
    } catch (e) {
      throw new ApiError(400, `the body is not JSON: ${e.message}`);
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ApiError(400, "the body must be a JSON object");
    return body;
  }

  // A form (or, for the token endpoint, JSON) body as a plain object of strings.
  async form() {
    const type = (this.req.headers["content-type"] || "").split(";")[0].trim().toLowerCase();
    if (type === "application/json") return this.json();
    const raw = await readBody(this.req);
    return Object.fromEntries(new URLSearchParams(raw.toString("utf8")));
  }

  send(status, contentType, body, headers) {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body, "utf8");
    const h = {
      "Content-Type": contentType,
      "Content-Length": buf.length,
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      ...(headers || {}),
    };
    if (this.setCookies.length) h["Set-Cookie"] = this.setCookies;
    this.res.writeHead(status, h);
    this.res.end(this.req.method === "HEAD" ? undefined : buf);
  }

  sendJson(status, obj, headers) {
    this.send(status, "application/json; charset=utf-8", JSON.stringify(obj), headers);
  }

  sendHtml(status, title, content) {
    const lang = this.lang;
    const user = this.user();
    const other = lang === "en" ? "zh-HK" : "en";
    const switchHref = `${this.path}?lang=${other}`;
    const nav = [`<a href="/">${esc(t(lang, "nav.home"))}</a>`];
    if (user) {
      nav.push(`<a href="/consents">${esc(t(lang, "nav.consents"))}</a>`);
      nav.push(`<a href="/records">${esc(t(lang, "nav.records"))}</a>`);
      nav.push(`<a href="/audit">${esc(t(lang, "nav.audit"))}</a>`);
    }
    nav.push(`<a href="/docs">${esc(t(lang, "nav.docs"))}</a>`);
    if (user) {
      nav.push(
        `<form method="post" action="/logout"><input type="hidden" name="csrf" value="${this.csrf()}"><button>${esc(t(lang, "nav.logout"))}</button></form>`,
      );
    } else {
      nav.push(`<a href="/login">${esc(t(lang, "nav.login"))}</a>`, `<a href="/register">${esc(t(lang, "nav.register"))}</a>`);
    }
    nav.push(`<a href="${esc(switchHref)}" lang="${other}">${esc(t(lang, "lang.switch"))}</a>`);
    const page =
      `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
      `<title>${esc(title)} · ${esc(t(lang, "brand"))}</title><link rel="stylesheet" href="/static/style.css"></head><body>` +
      `<header><a class="brand" href="/">${esc(t(lang, "brand"))}</a><span class="other" lang="${other}">${esc(t(lang, "brand.other"))}</span>` +
      `<nav aria-label="main">${nav.join("")}</nav></header><main>${content}</main>` +
      `<footer>${esc(t(lang, "footer"))}</footer></body></html>`;
    this.send(status, "text/html; charset=utf-8", page, {
      "Content-Security-Policy": "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      "Referrer-Policy": "same-origin",
    });
  }

  redirect(location) {
    this.send(303, "text/plain; charset=utf-8", `see ${location}\n`, { Location: location });
  }

  user() {
    if (this.userCache === undefined) this.userCache = this.gw.sessionUser(this.cookies.session);
    return this.userCache;
  }

  requireUser() {
    const user = this.user();
    if (!user) throw new ApiError(401, "log in first");
    return user;
  }

  csrf() {
    return this.gw.csrf(this.cookies.session);
  }

  department() {
    return this.gw.authenticate(this.req.headers.authorization);
  }
}

// -- routes ------------------------------------------------------------------------------------

const ROUTES = [];
function route(method, pattern, handler) {
  ROUTES.push({ method, re: new RegExp(`^${pattern}$`), handler });
}
const ID = "([A-Z]{3}-[0-9A-F]{12})";

// Citizens' JSON API.

route("POST", "/api/citizens", async (x) => {
  x.sendJson(201, x.gw.register(await x.json()));
});

route("POST", "/api/login", async (x) => {
  const token = x.gw.login(await x.json());
  x.setCookies.push(`session=${token}; Path=/; HttpOnly; SameSite=Strict`);
  x.sendJson(200, { username: x.gw.sessions.get(token).username });
});

route("POST", "/api/logout", async (x) => {
  const user = x.user();
  if (user) x.gw.sessions.delete(x.cookies.session);
  x.setCookies.push("session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
  x.sendJson(200, { logged_out: Boolean(user) });
});

route("GET", "/api/me", async (x) => {
  const u = x.requireUser();
  const pending = x.gw.listFor(x.gw.store.requests, (q) => q.citizen === u.username && q.status === "pending").length;
  const consents = x.gw.listFor(x.gw.store.consents, (c) => c.citizen === u.username && x.gw.consentStatus(c) === "active").length;
  x.sendJson(200, { username: u.username, name: u.name, name_zh: u.name_zh, pending_requests: pending, active_consents: consents });
});

route("GET", "/api/my/requests", async (x) => {
  const u = x.requireUser();
  const status = x.query.get("status") || "pending";
  const list = x.gw.listFor(x.gw.store.requests, (q) => q.citizen === u.username && (status === "all" || q.status === status));
  const p = page(list, x.query);
  x.sendJson(200, { total: p.total, requests: p.items.map((q) => x.gw.citizenRequestView(q, x.lang)) });
});

route("GET", `/api/my/requests/${ID}`, async (x, id) => {
  const u = x.requireUser();
  x.sendJson(200, x.gw.citizenRequestView(x.gw.citizenRequest(u, id), x.lang));
});

route("POST", `/api/my/requests/${ID}/approve`, async (x, id) => {
  const u = x.requireUser();
  const body = await x.json();
  x.sendJson(201, x.gw.decide(u, id, true, body.days));
});

route("POST", `/api/my/requests/${ID}/decline`, async (x, id) => {
  const u = x.requireUser();
  await x.json();
  x.sendJson(200, x.gw.decide(u, id, false));
});

route("GET", "/api/my/consents", async (x) => {
  const u = x.requireUser();
  const status = x.query.get("status") || "";
  const list = x.gw.listFor(x.gw.store.consents, (c) => c.citizen === u.username && (!status || x.gw.consentStatus(c) === status));
  const p = page(list, x.query);
  x.sendJson(200, { total: p.total, consents: p.items.map((c) => x.gw.consentView(c, x.lang)) });
});

route("POST", `/api/my/consents/${ID}/revoke`, async (x, id) => {
  const u = x.requireUser();
  await x.json();
  x.sendJson(200, x.gw.revoke(u, id));
});

route("GET", "/api/my/audit", async (x) => {
  const u = x.requireUser();
  const p = page(x.gw.listFor(x.gw.store.audit, (a) => a.citizen === u.username), x.query);
  x.sendJson(200, { total: p.total, events: p.items.map((a) => x.gw.auditView(a, x.lang)) });
});

route("GET", "/api/my/records", async (x) => {
  const u = x.requireUser();
  const p = page(x.gw.listFor(x.gw.store.records, (r) => r.citizen === u.username), x.query);
  x.sendJson(200, { total: p.total, records: p.items.map((r) => x.gw.recordView(r)) });
});

// Departments' JSON API.

route("POST", "/api/departments", async (x) => {
  x.sendJson(201, x.gw.registerClient(await x.json()));
});

route("GET", "/api/departments", async (x) => {
  const role = x.query.get("role") || "";
  const list = x.gw.allClients().filter((c) => !role || c.roles.includes(role)).reverse();
  const p = page(list, x.query);
  x.sendJson(200, { total: p.total, departments: p.items.map((c) => x.gw.publicClient(c)) });
});

route("GET", "/api/record-types", async (x) => {
  x.sendJson(200, { types: RECORD_TYPES.map((id) => ({ id, name: MESSAGES.en[`type.${id}`], name_zh: MESSAGES["zh-HK"][`type.${id}`] })) });
});

route("POST", "/api/oauth/token", async (x) => {
  const body = await x.form();
  const grant = body.grant_type || "client_credentials";
  if (grant !== "client_credentials") throw new ApiError(400, "grant_type must be client_credentials");
  let client;
  if (x.req.headers.authorization) client = x.department();
  else {
    const id = typeof body.client_id === "string" ? body.client_id : "";
    const secret = typeof body.client_secret === "string" ? body.client_secret : "";
    client = x.gw.checkClient(id, secret, {}, id ? 0 : -1);
  }
  x.sendJson(200, x.gw.issueToken(client));
});

route("GET", "/api/client", async (x) => {
  const c = x.department();
  const records = x.gw.listFor(x.gw.store.records, (r) => r.holder === c.client_id).length;
  const requests = x.gw.listFor(x.gw.store.requests, (q) => q.requester === c.client_id).length;
  x.sendJson(200, { ...x.gw.publicClient(c), records, requests });
});

route("POST", "/api/records", async (x) => {
  const holder = x.department();
  const record = x.gw.deposit(holder, await x.json());
  x.sendJson(201, x.gw.recordView(record));
});

route("GET", "/api/records", async (x) => {
  const holder = x.department();
  x.gw.requireRole(holder, "holder");
  const citizen = (x.query.get("citizen") || "").toLowerCase();
  const type = x.query.get("type") || "";
  const list = x.gw.listFor(
    x.gw.store.records,
    (r) => r.holder === holder.client_id && (!citizen || r.citizen === citizen) && (!type || r.type === type),
  );
  const p = page(list, x.query);
  x.sendJson(200, { total: p.total, records: p.items.map((r) => x.gw.recordView(r)) });
});

route("GET", `/api/records/${ID}`, async (x, id) => {
  const holder = x.department();
  x.sendJson(200, x.gw.recordView(x.gw.ownRecord(holder, id)));
});

route("DELETE", `/api/records/${ID}`, async (x, id) => {
  const holder = x.department();
  x.gw.ownRecord(holder, id);
  x.gw.store.del("records", id);
  x.sendJson(200, { deleted: id });
});

// Anyone holding a record number (a citizen's letter quotes it) can check that it is genuine.
route("GET", `/api/records/${ID}/verify`, async (x, id) => {
  const r = x.gw.store.records.get(id);
  if (!r) throw new ApiError(404, `no record ${id}`);
  x.sendJson(200, {
    record: r.id,
    valid: true,
    holder: r.holder,
    holder_name: x.gw.clientName(r.holder, "en"),
    type: r.type,
    issued: iso(r.created),
  });
});

route("POST", "/api/consent-requests", async (x) => {
  const requester = x.department();
  const q = x.gw.fileRequest(requester, await x.json());
  x.sendJson(201, x.gw.requestView(q));
});

route("GET", "/api/consent-requests", async (x) => {
  const requester = x.department();
  const status = x.query.get("status") || "";
  const list = x.gw.listFor(x.gw.store.requests, (q) => q.requester === requester.client_id && (!status || q.status === status));
  const p = page(list, x.query);
  x.sendJson(200, { total: p.total, requests: p.items.map((q) => x.gw.requestView(q)) });
});

route("GET", `/api/consent-requests/${ID}`, async (x, id) => {
  const requester = x.department();
  const q = x.gw.store.requests.get(id);
  if (!q || q.requester !== requester.client_id) throw new ApiError(404, `no consent request ${id} filed by ${requester.client_id}`);
  x.sendJson(200, x.gw.requestView(q));
});

route("GET", "/api/consents", async (x) => {
  const requester = x.department();
  const status = x.query.get("status") || "";
  const list = x.gw.listFor(x.gw.store.consents, (c) => c.requester === requester.client_id && (!status || x.gw.consentStatus(c) === status));
  const p = page(list, x.query);
  x.sendJson(200, { total: p.total, consents: p.items.map((c) => x.gw.consentView(c, "en")) });
});

route("GET", "/api/exchange", async (x) => {
  const requester = x.department();
  const consent = x.query.get("consent") || "";
  if (!consent) throw new ApiError(400, "say under which consent: ?consent=CNS-…");
  x.sendJson(200, x.gw.exchange(requester, consent, x.query.get("record") || ""));
});

// The service desk's view, for clients with the ops role.

route("GET", "/api/ops/departments", async (x) => {
  const ops = x.department();
  x.gw.requireRole(ops, "ops");
  const p = page(x.gw.allClients().reverse(), x.query);
  const stats = (c) => ({
    ...x.gw.publicClient(c),
    contact: c.contact,
    registered: iso(c.created),
    records: x.gw.listFor(x.gw.store.records, (r) => r.holder === c.client_id).length,
    requests: x.gw.listFor(x.gw.store.requests, (q) => q.requester === c.client_id).length,
  });
  x.sendJson(200, { total: p.total, departments: p.items.map(stats) });
});

route("GET", "/api/ops/consent-requests", async (x) => {
  const ops = x.department();
  x.gw.requireRole(ops, "ops");
  const department = x.query.get("department") || "";
  const status = x.query.get("status") || "";
  const list = x.gw.listFor(x.gw.store.requests, (q) => (!department || q.requester === department) && (!status || q.status === status));
  const p = page(list, x.query);
  x.sendJson(200, { total: p.total, requests: p.items.map((q) => ({ ...x.gw.requestView(q), requester: q.requester })) });
});

route("GET", "/api/health", async (x) => {
  x.sendJson(200, { status: "ok" });
});

// Citizens' pages.

route("GET", "/static/style.css", async (x) => {
  x.send(200, "text/css; charset=utf-8", PAGE_CSS, { "Cache-Control": "max-age=3600" });
});

route("GET", "/", async (x) => {
  const L = x.lang;
  const u = x.user();
  let content = `<h1>${esc(t(L, "home.title"))}</h1><p>${esc(t(L, "home.intro"))}</p><ol>`;
  content += ["home.step1", "home.step2", "home.step3"].map((k) => `<li>${esc(t(L, k))}</li>`).join("") + "</ol>";
  if (u) {
    const pending = x.gw.listFor(x.gw.store.requests, (q) => q.citizen === u.username && q.status === "pending").length;
    content += `<div class="card"><p>${esc(t(L, "home.welcome", { name: L === "zh-HK" && u.name_zh ? u.name_zh : u.name }))}</p>`;
    content += `<p><a href="/consents">${esc(t(L, "home.pending", { n: pending }))}</a></p></div>`;
  } else {
    content += loginForm(L, "", "");
  }
  x.sendHtml(200, t(L, "nav.home"), content);
});

function loginForm(L, next, error) {
  return (
    `<form class="card" method="post" action="/login"><h2>${esc(t(L, "login.title"))}</h2>` +
    (error ? `<p class="error" role="alert">${esc(error)}</p>` : "") +
    `<input type="hidden" name="next" value="${esc(next)}">` +
    `<label for="username">${esc(t(L, "field.username"))}</label><input id="username" name="username" autocomplete="username" required>` +
    `<label for="password">${esc(t(L, "field.password"))}</label><input id="password" name="password" type="password" autocomplete="current-password" required>` +
    `<button>${esc(t(L, "button.login"))}</button></form>`
  );
}

function safeNext(next) {
  return typeof next === "string" && /^\/[A-Za-z0-9/_-]*$/.test(next) && !next.startsWith("//") ? next : "/consents";
}

route("GET", "/login", async (x) => {
  const notice = x.query.get("registered") ? `<p class="ok" role="status">${esc(t(x.lang, "register.done"))}</p>` : "";
  x.sendHtml(200, t(x.lang, "login.title"), notice + loginForm(x.lang, x.query.get("next") || "", ""));
});

route("POST", "/login", async (x) => {
  const body = await x.form();
  try {
    const token = x.gw.login(body);
    x.setCookies.push(`session=${token}; Path=/; HttpOnly; SameSite=Strict`);
    x.redirect(safeNext(body.next));
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    x.sendHtml(e.status === 401 ? 401 : 400, t(x.lang, "login.title"), loginForm(x.lang, body.next || "", e.status === 401 ? t(x.lang, "login.failed") : e.message));
  }
});

function registerForm(L, error) {
  const field = (name, type, auto) =>
    `<label for="${name}">${esc(t(L, `field.${name}`))}</label><input id="${name}" name="${name}" type="${type}" autocomplete="${auto}"${name === "name_zh" ? "" : " required"}>`;
  return (
    `<form class="card" method="post" action="/register"><h2>${esc(t(L, "register.title"))}</h2>` +
    (error ? `<p class="error" role="alert">${esc(error)}</p>` : "") +
    field("username", "text", "username") +
    field("password", "password", "new-password") +
    field("name", "text", "name") +
    field("name_zh", "text", "off") +
    `<button>${esc(t(L, "button.register"))}</button></form>`
  );
}

route("GET", "/register", async (x) => {
  x.sendHtml(200, t(x.lang, "register.title"), registerForm(x.lang, ""));
});

route("POST", "/register", async (x) => {
  const body = await x.form();
  try {
    x.gw.register(body);
    x.redirect("/login?registered=1");
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    x.sendHtml(e.status, t(x.lang, "register.title"), registerForm(x.lang, e.message));
  }
});

// A state-changing form of a logged-in citizen: its CSRF token must match the session.
async function citizenForm(x) {
  const body = await x.form();
  const user = x.user();
  if (!user) {
    x.redirect("/login");
    return null;
  }
  const given = Buffer.from(String(body.csrf || ""));
  const want = Buffer.from(x.csrf());
  if (given.length !== want.length || !crypto.timingSafeEqual(given, want)) {
    x.sendHtml(403, t(x.lang, "error.title"), `<h1>${esc(t(x.lang, "error.title"))}</h1><p class="error">${esc(t(x.lang, "error.csrf"))}</p>`);
    return null;
  }
  return { user, body };
}

route("POST", "/logout", async (x) => {
  const f = await citizenForm(x);
  if (!f) return;
  x.gw.sessions.delete(x.cookies.session);
  x.setCookies.push("session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
  x.redirect("/");
});

function pageUser(x) {
  const u = x.user();
  if (!u) x.redirect(`/login?next=${encodeURIComponent(x.path)}`);
  return u;
}

function statusLabel(L, status) {
  return esc(t(L, `status.${status}`));
}

route("GET", "/consents", async (x) => {
  const u = pageUser(x);
  if (!u) return;
  const L = x.lang;
  const gw = x.gw;
  const pending = gw.listFor(gw.store.requests, (q) => q.citizen === u.username && q.status === "pending").slice(0, MAX_PAGE);
  const consents = gw.listFor(gw.store.consents, (c) => c.citizen === u.username).slice(0, MAX_PAGE);
  let content = `<h1>${esc(t(L, "consents.title"))}</h1><h2>${esc(t(L, "consents.pending"))}</h2>`;
  if (pending.length) {
    content += `<table><tr><th>${esc(t(L, "col.id"))}</th><th>${esc(t(L, "col.requester"))}</th><th>${esc(t(L, "col.type"))}</th><th>${esc(t(L, "col.holder"))}</th><th></th></tr>`;
    for (const q of pending) {
      const v = gw.citizenRequestView(q, L);
      content += `<tr><td>${esc(v.id)}</td><td>${esc(v.requester_name)}</td><td>${esc(t(L, `type.${v.type}`))}</td><td>${esc(v.holder_name)}</td><td><a href="/grant/${esc(v.id)}">${esc(t(L, "consents.review"))}</a></td></tr>`;
    }
    content += "</table>";
  } else {
    content += `<p class="muted">${esc(t(L, "consents.none_pending"))}</p>`;
  }
  content += `<h2>${esc(t(L, "consents.current"))}</h2>`;
  if (consents.length) {
    content += `<table><tr><th>${esc(t(L, "col.id"))}</th><th>${esc(t(L, "col.requester"))}</th><th>${esc(t(L, "col.type"))}</th><th>${esc(t(L, "col.holder"))}</th><th>${esc(t(L, "col.purpose"))}</th><th>${esc(t(L, "col.expires"))}</th><th>${esc(t(L, "col.status"))}</th><th></th></tr>`;
    for (const c of consents) {
      const v = gw.consentView(c, L);
      const action =
        v.status === "active"
          ? `<form method="post" action="/consents/${esc(v.id)}/revoke"><input type="hidden" name="csrf" value="${x.csrf()}"><button>${esc(t(L, "button.revoke"))}</button></form>`
          : "";
      content += `<tr><td>${esc(v.id)}</td><td>${esc(v.requester_name)}</td><td>${esc(t(L, `type.${v.type}`))}</td><td>${esc(v.holder_name)}</td><td>${esc(v.purpose)}</td><td>${esc(v.expires.slice(0, 10))}</td><td>${statusLabel(L, v.status)}</td><td>${action}</td></tr>`;
    }
    content += "</table>";
  } else {
    content += `<p class="muted">${esc(t(L, "consents.none"))}</p>`;
  }
  x.sendHtml(200, t(L, "consents.title"), content);
});

route("POST", `/consents/${ID}/revoke`, async (x, id) => {
  const f = await citizenForm(x);
  if (!f) return;
  x.gw.revoke(f.user, id);
  x.redirect("/consents");
});

route("GET", `/grant/${ID}`, async (x, id) => {
  const u = pageUser(x);
  if (!u) return;
  const L = x.lang;
  const v = x.gw.citizenRequestView(x.gw.citizenRequest(u, id), L);
  let content = `<h1>${esc(t(L, "grant.title", { id: v.id }))}</h1>`;
  content += `<p>${esc(t(L, "grant.asks", { requester: v.requester_name, holder: v.holder_name, type: t(L, `type.${v.type}`) }))}</p>`;
  content += `<h2>${esc(t(L, "grant.purpose"))}</h2><blockquote class="card">${esc(v.purpose)}</blockquote>`;
  if (v.status !== "pending") {
    content += `<p class="muted">${esc(t(L, "grant.decided", { status: t(L, `status.${v.status}`) }))}</p>`;
  } else {
    const choices = [...new Set([7, 30, 90, 180, 365, v.days])].filter((d) => d <= v.days).sort((a, b) => a - b);
    content +=
      `<form class="card" method="post" action="/grant/${esc(v.id)}"><input type="hidden" name="csrf" value="${x.csrf()}">` +
      `<p>${esc(t(L, "grant.suggested", { days: v.days }))}</p>` +
      `<label for="days">${esc(t(L, "field.days"))}</label><select id="days" name="days">` +
      choices.map((d) => `<option value="${d}"${d === v.days ? " selected" : ""}>${d}</option>`).join("") +
      `</select><p class="muted">${esc(t(L, "grant.notice"))}</p>` +
      `<button name="decision" value="approve">${esc(t(L, "button.approve"))}</button> ` +
      `<button name="decision" value="decline">${esc(t(L, "button.decline"))}</button></form>`;
  }
  x.sendHtml(200, t(L, "grant.title", { id: v.id }), content);
});

route("POST", `/grant/${ID}`, async (x, id) => {
  const f = await citizenForm(x);
  if (!f) return;
  x.gw.decide(f.user, id, f.body.decision === "approve", f.body.days);
  x.redirect("/consents");
});

route("GET", "/audit", async (x) => {
  const u = pageUser(x);
  if (!u) return;
  const L = x.lang;
  const events = x.gw.listFor(x.gw.store.audit, (a) => a.citizen === u.username);
  let content = `<h1>${esc(t(L, "audit.title"))}</h1>`;
  if (!events.length) content += `<p class="muted">${esc(t(L, "audit.none"))}</p>`;
  else {
    content += `<table><tr><th>${esc(t(L, "col.when"))}</th><th>${esc(t(L, "col.event"))}</th><th>${esc(t(L, "col.id"))}</th></tr>`;
    for (const a of events) {
      const v = x.gw.auditView(a, L);
      const line = t(L, `audit.${v.event}`, { requester: v.requester_name, holder: v.holder_name, type: t(L, `type.${v.type}`) });
      content += `<tr><td>${esc(v.at.replace("T", " ").replace("Z", " UTC"))}</td><td>${esc(line)}</td><td>${esc(v.consent || "")}${v.record ? " · " + esc(v.record) : ""}</td></tr>`;
    }
    content += "</table>";
  }
  x.sendHtml(200, t(L, "audit.title"), content);
});

route("GET", "/records", async (x) => {
  const u = pageUser(x);
  if (!u) return;
  const L = x.lang;
  const records = x.gw.listFor(x.gw.store.records, (r) => r.citizen === u.username).slice(0, MAX_PAGE);
  let content = `<h1>${esc(t(L, "records.title"))}</h1>`;
  if (!records.length) content += `<p class="muted">${esc(t(L, "records.none"))}</p>`;
  else {
    content += `<table><tr><th>${esc(t(L, "col.id"))}</th><th>${esc(t(L, "col.type"))}</th><th>${esc(t(L, "col.holder"))}</th><th>${esc(t(L, "col.issued"))}</th><th>${esc(t(L, "col.details"))}</th></tr>`;
    for (const r of records) {
      const details = [r.title, ...Object.entries(r.fields).map(([k, v]) => `${k}: ${v}`), r.reference, r.note].filter(Boolean);
      content += `<tr><td>${esc(r.id)}</td><td>${esc(t(L, `type.${r.type}`))}</td><td>${esc(x.gw.clientName(r.holder, L))}</td><td>${esc(iso(r.created).slice(0, 10))}</td><td>${details.map(esc).join("<br>")}</td></tr>`;
    }
    content += "</table>";
  }
  x.sendHtml(200, t(L, "records.title"), content);
});

// The endpoints the guide lists; what each does is in the message catalogue (docs.api.N).
const API_TABLE = [
  ["POST", "/api/departments"],
  ["POST", "/api/oauth/token"],
  ["GET", "/api/client"],
  ["GET", "/api/departments?role=holder"],
  ["GET", "/api/record-types"],
  ["POST", "/api/records"],
  ["GET", "/api/records?citizen=&type="],
  ["GET / DELETE", "/api/records/REC-…"],
  ["GET", "/api/records/REC-…/verify"],
  ["POST", "/api/consent-requests"],
  ["GET", "/api/consent-requests[/CRQ-…]"],
  ["GET", "/api/consents?status=active"],
  ["GET", "/api/exchange?consent=CNS-…[&record=REC-…]"],
];

route("GET", "/docs", async (x) => {
  const L = x.lang;
  let content = `<h1>${esc(t(L, "docs.title"))}</h1><p>${esc(t(L, "docs.intro"))}</p><p>${esc(t(L, "docs.holders"))}</p>`;
  for (const seed of SEED_CLIENTS) {
    if (seed.enabled) content += `<p class="card">${esc(t(L, "docs.sandbox", { id: seed.client_id, secret: seed.secret }))}</p>`;
  }
  content += `<h2>${esc(t(L, "docs.endpoints"))}</h2><table>`;
  content += API_TABLE.map(([m, p], i) => `<tr><td>${esc(m)}</td><td><code>${esc(p)}</code></td><td>${esc(t(L, `docs.api.${i}`))}</td></tr>`).join("");
  content += "</table>";
  x.sendHtml(200, t(L, "docs.title"), content);
});

async function handle(gw, req, res) {
  const started = Date.now();
  res.on("finish", () => {
    const when = new Date().toISOString().slice(11, 19);
    const where = (req.url || "").split("?")[0].slice(0, 200);
    process.stderr.write(`${when} ${req.socket.remoteAddress} ${req.method} ${where} ${res.statusCode} ${Date.now() - started}ms\n`);
  });
  let x;
  try {
    x = new Exchange(gw, req, res);
    const method = req.method === "HEAD" ? "GET" : req.method;
    let pathKnown = false;
    for (const r of ROUTES) {
      const m = r.re.exec(x.path);
      if (!m) continue;
      pathKnown = true;
      if (r.method !== method) continue;
      await r.handler(x, ...m.slice(1));
      return;
    }
    if (pathKnown) throw new ApiError(405, `${req.method} is not allowed on ${x.path}`);
    if (!x.path.startsWith("/api/")) {
      x.sendHtml(404, t(x.lang, "error.title"), `<h1>${esc(t(x.lang, "error.title"))}</h1><p>${esc(t(x.lang, "error.notfound"))}</p>`);
      return;
    }
    throw new ApiError(404, `no such endpoint: ${x.path}`);
  } catch (e) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (e instanceof ApiError) {
      const headers = { ...e.headers };
      if (e.status === 413) headers.Connection = "close";
      if (x) x.sendJson(e.status, { error: e.message }, headers);
      else sendBare(res, e.status, { error: e.message });
    } else {
      process.stderr.write(`internal error on ${req.method} ${req.url}: ${e && e.stack ? e.stack : e}\n`);
      if (x) x.sendJson(500, { error: "internal error" });
      else sendBare(res, 400, { error: "bad request" });
    }
  }
}

function sendBare(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

// -- main --------------------------------------------------------------------------------------

function usage(message) {
  process.stderr.write(
    "usage: app.js [--host 0.0.0.0] [--port 8080] [--data /tmp/consent] [--retention-minutes 60]\n" + (message ? `error: ${message}\n` : ""),
  );
  process.exit(2);
}

function parseArgs(argv) {
  const env = process.env;
  const opts = {
    host: env.CONSENT_HOST || "0.0.0.0",
    port: env.CONSENT_PORT || "8080",
    data: env.CONSENT_DATA || "/tmp/consent",
    "retention-minutes": env.CONSENT_RETENTION_MINUTES || "60",
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    if (arg === "-h" || arg === "--help") usage();
    let value;
    const eq = arg.indexOf("=");
    if (eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const name = arg.replace(/^--/, "");
    if (!arg.startsWith("--") || !(name in opts)) usage(`unknown argument ${arg}`);
    if (value === undefined) {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      value = argv[++i];
    }
    opts[name] = value;
  }
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) usage("--port must be 0-65535");
  const retention = Number(opts["retention-minutes"]);
  if (!(retention > 0)) usage("--retention-minutes must be positive");
  return { host: opts.host, port, data: opts.data, retentionMs: retention * 60 * 1000 };
}

function main() {
  checkCatalogues();
  const args = parseArgs(process.argv.slice(2));
  const store = new Store(args.data, args.retentionMs);
  try {
    store.load();
  } catch (e) {
    usage(`cannot use data folder ${args.data}: ${e.message}`);
  }
  const gw = new Gateway(store);
  const server = http.createServer((req, res) => {
    handle(gw, req, res);
  });
  server.headersTimeout = 10000;
  server.requestTimeout = 15000;
  server.keepAliveTimeout = 5000;
  server.maxHeadersCount = 64;
  server.maxConnections = 256;
  server.on("clientError", (err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    else socket.destroy();
  });
  server.on("error", (e) => usage(`cannot listen on ${args.host}:${args.port}: ${e.code || e.message}`));
  server.listen(args.port, args.host, () => {
    const addr = server.address();
    const host = addr.family === "IPv6" || addr.family === 6 ? `[${addr.address}]` : addr.address;
    process.stdout.write(`listening on http://${host}:${addr.port}\n`);
  });
  const sweep = () => {
    try {
      const n = store.sweep(Date.now());
      gw.expireSessions(Date.now(), false);
      if (n) process.stderr.write(`retention: deleted ${n} old objects\n`);
    } catch (e) {
      // A failed sweep is tried again next time.
      process.stderr.write(`cleanup failed: ${e.message}\n`);
    }
  };
  setInterval(sweep, 60 * 1000).unref();
  const stop = () => {
    server.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main();
