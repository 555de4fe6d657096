#!/usr/bin/env python3
"""CityPass Digital Identity (城市通數碼身份): one digital identity for public services.

Citizens register with their name, identity card number and mobile number, then:

- keep a personal data wallet (address proofs, qualifications, vaccination records, licences),
  private to them;
- log in to relying services (government and public e-services) through an OAuth 2.0 /
  OpenID Connect flow: the service sends the citizen to /oauth/authorize, the citizen consents
  to the claims it asks for, the service swaps the code for an access token and an ID token at
  /oauth/token and reads the consented claims (wallet items too) at /oauth/userinfo;
- sign documents with a key the platform holds for them; anyone holding a document can verify
  its signature, and only the signer sees the list of what they signed.

Python 3 standard library only. Everything it writes lives under --data (default
/tmp/citizenid), because the container's root filesystem is read-only:

    DATA/citypass.db          citizens, sessions, wallet, documents, relying services, codes

Data older than --retention-minutes is deleted in the background so a long drill does not
fill the small /tmp.
"""

import argparse
import base64
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote_plus, urlencode, urlsplit

VERSION = "2.3.1"
MAX_BODY = 64 * 1024
MAX_WALLET_CONTENT = 4000
MAX_DOCUMENT = 16_000
MAX_WALLET_ITEMS = 100
MAX_DOCUMENTS = 200
MAX_CLIENTS = 10
# PBKDF2 with few rounds: the drill's checker logs in many times a tick on a shared CPU; a real
# deployment would use far more.
PBKDF2_ROUNDS = 1_000
SESSION_MAX_AGE = 8 * 3600
CODE_MAX_AGE = 5 * 60
ACCESS_TOKEN_MAX_AGE = 10 * 60
ID_TOKEN_MAX_AGE = 10 * 60
SIGN_LOG_MAX_AGE = 30 * 60
# Left on from development: the signing module's request trace under /debug/. It was meant to
# be switched off before go-live.
DEBUG_TOOLS = True

ID_NUMBER_RE = re.compile(r"^([A-Z])([0-9]{6})\(([0-9A])\)$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ]{7,18}$")
REF_RE = re.compile(r"^SD-[0-9A-Z]{10}$")
WALLET_PATH_RE = re.compile(r"^/api/wallet/([0-9]{1,12})$")
DOCUMENT_PATH_RE = re.compile(r"^/api/documents/(SD-[0-9A-Z]{10})$")
CLIENT_ID_RE = re.compile(r"^rp-[0-9a-f]{16}$")
# Unambiguous capitals and digits for CityPass IDs and document references.
ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

WALLET_KINDS = ("address", "education", "vaccination", "licence")
# The scopes a relying service may ask for, with what the consent page tells the citizen.
SCOPES = {
    "openid": "scope_openid",
    "profile": "scope_profile",
    "phone": "scope_phone",
    "idno": "scope_idno",
    "wallet.address": "scope_wallet_address",
    "wallet.education": "scope_wallet_education",
    "wallet.vaccination": "scope_wallet_vaccination",
    "wallet.licence": "scope_wallet_licence",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS citizens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sub TEXT NOT NULL UNIQUE,
    id_number TEXT NOT NULL UNIQUE,
    name_en TEXT NOT NULL,
    name_zh TEXT NOT NULL,
    phone TEXT NOT NULL,
    salt BLOB NOT NULL,
    pw_hash BLOB NOT NULL,
    sign_key BLOB NOT NULL,
    key_id TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token TEXT PRIMARY KEY,
    citizen_id INTEGER NOT NULL,
    csrf TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS wallet (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    citizen_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    issuer TEXT NOT NULL,
    content TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS wallet_owner ON wallet (citizen_id, id);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ref TEXT NOT NULL UNIQUE,
    citizen_id INTEGER NOT NULL,
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    digest TEXT NOT NULL,
    signature TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_owner ON documents (citizen_id, id);
CREATE TABLE IF NOT EXISTS sign_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ref TEXT NOT NULL,
    sub TEXT NOT NULL,
    request TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    name TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    owner_id INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    citizen_id INTEGER NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS consents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    citizen_id INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS consents_citizen ON consents (citizen_id, id);
CREATE TABLE IF NOT EXISTS revoked (
    jti TEXT PRIMARY KEY,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""

# -- the message catalogue: every string a page shows, in English and Hong Kong Chinese -------

MESSAGES = {
    "en": {
        "brand": "CityPass Digital Identity",
        "office": "Civic Digital Services Office",
        "tagline": "One digital identity for government and public e-services.",
        "nav_home": "Home",
        "nav_login": "Log in",
        "nav_register": "Register",
        "nav_account": "My CityPass",
        "nav_verify": "Verify a signature",
        "nav_logout": "Log out",
        "lang_other": "繁體中文",
        "home_intro": "Log in to e-services with one identity, keep your personal documents in your data wallet, "
        "share them only with the services you allow, and sign documents electronically.",
        "home_features": "What you can do",
        "feature_login": "Log in to relying e-services without a new password for each.",
        "feature_wallet": "Keep address proofs, qualifications, vaccination records and licences in your data wallet.",
        "feature_consent": "Decide, every time, what a service may read about you.",
        "feature_sign": "Sign documents with your personal signing key.",
        "login_title": "Log in to CityPass",
        "id_number": "Identity card number",
        "id_number_hint": "e.g. K482913(9)",
        "password": "Password",
        "login_button": "Log in",
        "register_title": "Register for CityPass",
        "name_en": "Name in English",
        "name_zh": "Name in Chinese",
        "phone": "Mobile number",
        "register_button": "Register",
        "registered": "Registered. You can log in now.",
        "account_title": "My CityPass",
        "citypass_id": "CityPass ID",
        "profile": "Profile",
        "wallet": "Data wallet",
        "wallet_empty": "Your wallet is empty.",
        "wallet_add": "Add to wallet",
        "kind": "Kind",
        "kind_address": "Address proof",
        "kind_education": "Qualification",
        "kind_vaccination": "Vaccination record",
        "kind_licence": "Licence",
        "title": "Title",
        "issuer": "Issued by",
        "content": "Content",
        "add_button": "Add",
        "remove_button": "Remove",
        "documents": "Signed documents",
        "documents_empty": "You have not signed any document yet.",
        "sign_title": "Sign a document",
        "sign_button": "Sign",
        "reference": "Reference",
        "signed_at": "Signed at",
        "signature": "Signature",
        "consents": "Authorisation records",
        "consents_empty": "You have not authorised any e-service yet.",
        "service": "E-service",
        "shared": "Shared",
        "when": "When",
        "clients": "My relying services (developers)",
        "clients_empty": "No relying service registered.",
        "client_name": "Service name",
        "client_id": "Client ID",
        "redirect_uri": "Redirect URI",
        "client_register": "Register a relying service",
        "client_secret_once": "Keep the client secret now: it is shown only once.",
        "consent_title": "Authorise an e-service",
        "consent_intro": "wants to use your CityPass identity. It will receive:",
        "consent_as": "You are logged in as",
        "allow": "Allow",
        "deny": "Do not allow",
        "verify_title": "Verify a signed document",
        "verify_intro": "Paste the document exactly as it was signed, with its reference and signature.",
        "verify_button": "Verify",
        "verify_valid": "The signature is valid.",
        "verify_invalid": "The signature does not match this document.",
        "error_title": "Something went wrong",
        "not_found": "This page does not exist.",
        "done": "Done.",
        "scope_openid": "Your CityPass ID",
        "scope_profile": "Your name in English and Chinese",
        "scope_phone": "Your mobile number",
        "scope_idno": "Your identity card number",
        "scope_wallet_address": "Address proofs in your data wallet",
        "scope_wallet_education": "Qualifications in your data wallet",
        "scope_wallet_vaccination": "Vaccination records in your data wallet",
        "scope_wallet_licence": "Licences in your data wallet",
        "footer": "CityPass is run by the Civic Digital Services Office. Drill system: all data is fictitious.",
    },
    "zh-HK": {
        "brand": "城市通數碼身份",
        "office": "市民數碼服務署",
        "tagline": "一個數碼身份，通行政府及公共電子服務。",
        "nav_home": "主頁",
        "nav_login": "登入",
        "nav_register": "登記",
        "nav_account": "我的城市通",
        "nav_verify": "核實簽署",
        "nav_logout": "登出",
        "lang_other": "English",
        "home_intro": "以一個身份登入各項電子服務，把個人文件存放在個人資料錢包，只與你授權的服務分享，並以電子方式簽署文件。",
        "home_features": "你可以",
        "feature_login": "登入各項電子服務，毋須為每項服務另設密碼。",
        "feature_wallet": "在資料錢包存放住址證明、學歷證明、疫苗接種紀錄及牌照。",
        "feature_consent": "每次自行決定服務可讀取你的哪些資料。",
        "feature_sign": "以你的個人簽署密碼匙電子簽署文件。",
        "login_title": "登入城市通",
        "id_number": "身份證號碼",
        "id_number_hint": "例如 K482913(9)",
        "password": "密碼",
        "login_button": "登入",
        "register_title": "登記城市通",
        "name_en": "英文姓名",
        "name_zh": "中文姓名",
        "phone": "手提電話號碼",
        "register_button": "登記",
        "registered": "登記完成，你現在可以登入。",
        "account_title": "我的城市通",
        "citypass_id": "城市通號碼",
        "profile": "個人資料",
        "wallet": "資料錢包",
        "wallet_empty": "你的錢包暫無項目。",
        "wallet_add": "加入錢包",
        "kind": "類別",
        "kind_address": "住址證明",
        "kind_education": "學歷證明",
        "kind_vaccination": "疫苗接種紀錄",
        "kind_licence": "牌照",
        "title": "標題",
        "issuer": "簽發機構",
        "content": "內容",
        "add_button": "加入",
        "remove_button": "移除",
        "documents": "已簽署文件",
        "documents_empty": "你尚未簽署任何文件。",
        "sign_title": "簽署文件",
        "sign_button": "簽署",
        "reference": "編號",
        "signed_at": "簽署時間",
        "signature": "簽署",
        "consents": "授權紀錄",
        "consents_empty": "你尚未授權任何電子服務。",
        "service": "電子服務",
        "shared": "已分享",
        "when": "時間",
        "clients": "我的依賴服務（開發者）",
        "clients_empty": "尚未登記依賴服務。",
        "client_name": "服務名稱",
        "client_id": "用戶端編號",
        "redirect_uri": "重新導向網址",
        "client_register": "登記依賴服務",
        "client_secret_once": "請即保存用戶端密碼：只會顯示一次。",
        "consent_title": "授權電子服務",
        "consent_intro": "希望使用你的城市通身份，並會取得：",
        "consent_as": "你已登入為",
        "allow": "同意",
        "deny": "不同意",
        "verify_title": "核實已簽署文件",
        "verify_intro": "請貼上與簽署時完全相同的文件，連同其編號及簽署。",
        "verify_button": "核實",
        "verify_valid": "簽署有效。",
        "verify_invalid": "簽署與此文件不符。",
        "error_title": "出現問題",
        "not_found": "找不到此網頁。",
        "done": "完成。",
        "scope_openid": "你的城市通號碼",
        "scope_profile": "你的英文及中文姓名",
        "scope_phone": "你的手提電話號碼",
        "scope_idno": "你的身份證號碼",
        "scope_wallet_address": "資料錢包中的住址證明",
        "scope_wallet_education": "資料錢包中的學歷證明",
        "scope_wallet_vaccination": "資料錢包中的疫苗接種紀錄",
        "scope_wallet_licence": "資料錢包中的牌照",
        "footer": "城市通由市民數碼服務署營運。演練系統：所有資料均屬虛構。",
    },
}

STYLE_CSS = """
body { font-family: system-ui, "Noto Sans HK", "Noto Sans TC", sans-serif; margin: 0; color: #17212b; background: #f3f6f5; }
header { background: #0d5c4a; color: #fff; padding: .8em 2em; display: flex; flex-wrap: wrap; gap: 1em; align-items: center; }
header a { color: #fff; }
header .brand { font-weight: bold; font-size: 1.2em; text-decoration: none; margin-right: auto; }
main { padding: 1em 2em; max-width: 62em; }
section { background: #fff; border: 1px solid #c9d6d1; border-radius: 6px; padding: .8em 1.2em; margin: 1em 0; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #d5e0dc; padding: .35em .5em; text-align: left; vertical-align: top; }
label { display: block; margin: .5em 0 .2em; }
input, textarea, select { font: inherit; padding: .3em; width: 100%; max-width: 32em; box-sizing: border-box; }
button { font: inherit; padding: .35em 1.2em; margin-top: .6em; background: #0d5c4a; color: #fff; border: 0; border-radius: 4px; cursor: pointer; }
button.secondary { background: #5b6770; }
button:focus-visible, a:focus-visible, input:focus-visible, textarea:focus-visible { outline: 3px solid #f2b705; outline-offset: 2px; }
.out { min-height: 1.4em; color: #0d5c4a; font-weight: bold; white-space: pre-wrap; }
.muted { color: #4c5a63; font-size: .92em; }
code { background: #e6efec; padding: 0 .25em; word-break: break-all; }
footer { padding: 1em 2em; color: #4c5a63; font-size: .9em; }
@media (prefers-reduced-motion: reduce) { * { transition: none !important; animation: none !important; } }
"""

# The one script of the web pages: forms marked data-api are sent to the JSON API; answers reach
# the page only through textContent.
APP_JS = """
"use strict";
function safeNext(next) {
  return typeof next === "string" && next.startsWith("/") && !next.startsWith("//") ? next : "/account";
}
for (const form of document.querySelectorAll("form[data-api]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = form.querySelector(".out");
    const body = {};
    for (const [key, value] of new FormData(form)) body[key] = value;
    let answer = {};
    let response;
    try {
      response = await fetch(form.dataset.api, {
        method: form.dataset.method || "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify(body),
      });
      answer = await response.json();
    } catch (e) {
      if (out) out.textContent = String(e);
      return;
    }
    if (!response.ok) {
      if (out) out.textContent = answer.error || String(response.status);
      return;
    }
    if (form.dataset.after === "next") {
      location.assign(safeNext(new URLSearchParams(location.search).get("next")));
    } else if (form.dataset.after === "verify") {
      out.textContent = answer.valid ? form.dataset.valid : form.dataset.invalid;
    } else if (form.dataset.after === "client") {
      out.textContent = form.dataset.note + "\\nclient_id: " + answer.client_id + "\\nclient_secret: " + answer.client_secret;
    } else if (form.dataset.after === "message") {
      out.textContent = form.dataset.message;
    } else {
      location.reload();
    }
  });
}
"""

CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"


class ApiError(Exception):
    """An error answered as JSON: {"error": message} with an HTTP status, or, for the OAuth
    endpoints, {"error": code, "error_description": message} as RFC 6749 says."""

    def __init__(self, status, message, oauth=None, headers=()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.oauth = oauth
        self.headers = list(headers)


class TokenError(Exception):
    """A bearer token that is malformed, badly signed or expired."""


# -- small helpers ---------------------------------------------------------------------------


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise TokenError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# The JWS algorithms the token helper knows (RFC 7518 §3.1), from the shared helper the relying
# service SDK uses as well; "none" is the unsecured JWT of RFC 7519 §6.
JWS_ALGORITHMS = {
    "HS256": hashlib.sha256,
    "HS384": hashlib.sha384,
    "HS512": hashlib.sha512,
    "none": None,
}


def jws_mac(alg, key, signing_input):
    digest = JWS_ALGORITHMS[alg]
    if digest is None:
        return b""
    return hmac.new(key, signing_input, digest).digest()


def jwt_encode(claims, key, typ, kid=None, alg="HS256"):
    header = {"alg": alg, "typ": typ}
    if kid:
        header["kid"] = kid
    head = b64url(json.dumps(header, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    signing_input = f"{head}.{body}".encode("ascii")
    return f"{head}.{body}.{b64url(jws_mac(alg, key, signing_input))}"


def jwt_decode(token, key):
    """(header, claims) of a JWS-signed JWT made with `key`; TokenError otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("a JWT has three parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise TokenError(f"not a JWT: {e}")
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("not a JWT")
    alg = header.get("alg")
    if alg not in JWS_ALGORITHMS:
        raise TokenError(f"unsupported alg {alg!r}")
    expected = jws_mac(alg, key, f"{parts[0]}.{parts[1]}".encode("ascii"))
    if not hmac.compare_digest(expected, b64url_decode(parts[2])):
        raise TokenError("bad signature")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp < time.time():
        raise TokenError("expired")
    return header, claims


def random_id(n):
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(n))


def id_check_char(letter, digits):
    """The check character of a CityPass-format identity number (an invented scheme, not any
    real identity card's): weights 8..2 over the letter (A=10) and six digits, mod 11."""
    total = (ord(letter) - 55) * 8 + sum(int(d) * w for d, w in zip(digits, range(7, 1, -1)))
    check = (total * 3 + 5) % 11
    return "A" if check == 10 else str(check)


def valid_id_number(text):
    m = ID_NUMBER_RE.match(text)
    return bool(m) and id_check_char(m.group(1), m.group(2)) == m.group(3)


def mask_id_number(text):
    return text[:4] + "***(*)"


def hash_password(password, salt):
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, PBKDF2_ROUNDS)


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def text_field(body, name, max_len, required=True, default="", strip=True):
    value = body.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    if strip:
        value = value.strip()
    if required and not value:
        raise ApiError(400, f"{name} is required")
    if len(value) > max_len:
        raise ApiError(400, f"{name} is longer than {max_len} characters")
    return value


def valid_redirect_uri(uri):
    if len(uri) > 300 or "#" in uri or any(c.isspace() for c in uri):
        return False
    parts = urlsplit(uri)
    if parts.scheme == "https" and parts.netloc:
        return True
    return parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1")


def document_digest(content):
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def document_signature(key, ref, sub, digest, signed_at):
    message = f"citypass-sign-v1\n{ref}\n{sub}\n{digest}\n{signed_at}".encode("utf-8")
    return b64url(hmac.new(key, message, hashlib.sha256).digest())


def table(t, headers, rows, empty, row_headers=False):
    """An HTML table of ready-escaped cells; `headers` are catalogue keys (None: no heading)."""
    if not rows:
        return f"<p>{empty}</p>"
    head = "<tr>" + "".join(f"<th>{t[h] if h else ''}</th>" for h in headers) + "</tr>" if headers else ""
    cell = "th" if row_headers else "td"
    body = "".join(
        "<tr>" + "".join(f"<{cell if i == 0 else 'td'}>{c}</{cell if i == 0 else 'td'}>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table>{head}{body}</table>"


def field(id_, name, label, kind="text", rows=0, extra=""):
    """A labelled input (or a textarea when `rows`), required."""
    if rows:
        control = f'<textarea id="{id_}" name="{name}" rows="{rows}" required{extra}></textarea>'
    else:
        control = f'<input id="{id_}" name="{name}" type="{kind}" required{extra}>'
    return f'<label for="{id_}">{label}</label>{control}'


def api_form(api, button, fields, attributes=""):
    """A form that app.js sends to the JSON API, with a live region for the answer."""
    return (
        f'<form data-api="{api}"{attributes}>{"".join(fields)}'
        f'<button>{button}</button><p class="out" aria-live="polite"></p></form>'
    )


class Storage:
    """The data folder and its SQLite database."""

    def __init__(self, root, retention):
        self.root = os.path.abspath(root)
        self.db_path = os.path.join(self.root, "citypass.db")
        self.retention = retention
        self.schema_lock = threading.Lock()
        self._token_key = None

    def connect(self):
        os.makedirs(self.root, exist_ok=True)
        # Under the lock, so no request sees a database file whose tables are not made yet.
        with self.schema_lock:
            fresh = not os.path.exists(self.db_path)
            conn = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
            if fresh:
                conn.executescript(SCHEMA)
                self._token_key = None
        conn.row_factory = sqlite3.Row
        return conn

    def init(self):
        conn = self.connect()
        try:
            conn.executescript(SCHEMA)
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()

    def token_key(self, conn):
        """The key that signs access tokens, made on first use and kept in the database."""
        if self._token_key is None:
            conn.execute("INSERT OR IGNORE INTO settings (name, value) VALUES ('token_key', ?)", (secrets.token_bytes(32),))
            self._token_key = conn.execute("SELECT value FROM settings WHERE name = 'token_key'").fetchone()[0]
        return self._token_key

    def cleanup(self, now=None):
        """Deletes citizens (and all they made) past retention, and spent codes and logs."""
        now = time.time() if now is None else now
        cutoff = now - self.retention
        conn = self.connect()
        try:
            old = "(SELECT id FROM citizens WHERE created < ?)"
            conn.execute("BEGIN IMMEDIATE")
            for table in ("sessions", "wallet", "documents", "consents"):
                conn.execute(f"DELETE FROM {table} WHERE created < ? OR citizen_id IN {old}", (cutoff, cutoff))
            conn.execute(f"DELETE FROM clients WHERE created < ? OR owner_id IN {old}", (cutoff, cutoff))
            conn.execute("DELETE FROM codes WHERE created < ?", (now - CODE_MAX_AGE,))
            conn.execute("DELETE FROM sign_log WHERE created < ?", (now - min(SIGN_LOG_MAX_AGE, self.retention),))
            conn.execute("DELETE FROM revoked WHERE expires < ?", (now,))
            conn.execute("DELETE FROM sessions WHERE created < ?", (now - SESSION_MAX_AGE,))
            conn.execute("DELETE FROM citizens WHERE created < ?", (cutoff,))
            conn.execute("COMMIT")
        finally:
            conn.close()


class Handler(BaseHTTPRequestHandler):
    server_version = "CityPass/" + VERSION
    timeout = 15
    storage: Storage = None

    # -- plumbing ------------------------------------------------------------------------

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        url = urlsplit(self.path)
        self.query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        self.extra_headers = []
        self.db = None
        self._user = False
        try:
            self.db = self.storage.connect()
            self.find_route(method, url.path)()
        except ApiError as e:
            body = {"error": e.oauth, "error_description": e.message} if e.oauth else {"error": e.message}
            self.send_json(e.status, body, e.headers)
        except sqlite3.OperationalError as e:
            self.log_error("database error: %s", e)
            self.send_json(503, {"error": "the database is busy or full; try again"})
        except Exception as e:  # keep serving whatever one request did
            self.log_error("internal error on %s %s: %r", method, url.path, e)
            self.send_json(500, {"error": "internal error"})
        finally:
            if self.db is not None:
                self.db.close()

    def find_route(self, method, path):
        routes = {
            ("GET", "/"): self.page_home,
            ("GET", "/login"): self.page_login,
            ("GET", "/register"): self.page_register,
            ("GET", "/account"): self.page_account,
            ("GET", "/verify"): self.page_verify,
            ("GET", "/static/app.js"): lambda: self.send_body(200, "text/javascript; charset=utf-8", APP_JS.encode()),
            ("GET", "/static/style.css"): lambda: self.send_body(200, "text/css; charset=utf-8", STYLE_CSS.encode()),
            ("GET", "/robots.txt"): self.robots,
            ("GET", "/api/health"): self.api_health,
            ("POST", "/api/register"): self.api_register,
            ("POST", "/api/login"): self.api_login,
            ("POST", "/api/logout"): self.api_logout,
            ("GET", "/api/me"): self.api_me,
            ("GET", "/api/wallet"): self.api_wallet_list,
            ("POST", "/api/wallet"): self.api_wallet_add,
            ("GET", "/api/documents"): self.api_documents_list,
            ("POST", "/api/documents"): self.api_sign,
            ("POST", "/api/verify"): self.api_verify,
            ("GET", "/api/clients"): self.api_clients_list,
            ("POST", "/api/clients"): self.api_client_register,
            ("GET", "/api/consents"): self.api_consents,
            ("GET", "/.well-known/openid-configuration"): self.api_discovery,
            ("GET", "/oauth/authorize"): self.oauth_authorize,
            ("POST", "/oauth/authorize"): self.oauth_consent,
            ("POST", "/oauth/token"): self.oauth_token,
            ("GET", "/oauth/userinfo"): self.oauth_userinfo,
            ("POST", "/oauth/userinfo"): self.oauth_userinfo,
            ("POST", "/oauth/revoke"): self.oauth_revoke,
            ("GET", "/debug/sign-requests"): self.debug_sign_requests,
        }
        if (method, path) in routes:
            return routes[(method, path)]
        m = WALLET_PATH_RE.match(path)
        if m:
            item_id = int(m.group(1))
            if method == "GET":
                return lambda: self.api_wallet_item(item_id)
            if method == "DELETE":
                return lambda: self.api_wallet_delete(item_id)
        d = DOCUMENT_PATH_RE.match(path)
        if d and method == "GET":
            return lambda: self.api_document(d.group(1))
        if any(p == path for (_, p) in routes) or m or d:
            raise ApiError(405, f"{method} is not allowed on {path}")
        if path.startswith("/api/") or path.startswith("/oauth/") or method != "GET":
            raise ApiError(404, f"no such endpoint: {path}")
        return self.page_not_found

    def read_body(self):
        length = self.headers.get("Content-Length")
        if length is None:
            raise ApiError(411, "send a Content-Length header with the body")
        try:
            length = int(length)
        except ValueError:
            raise ApiError(400, "Content-Length is not a number")
        if length < 0 or length > MAX_BODY:
            raise ApiError(413, f"the body is larger than {MAX_BODY} bytes")
        return self.rfile.read(length)

    def read_json(self):
        # Only JSON: a cross-site HTML form cannot send it without the browser asking first.
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(415, "send the body as application/json")
        raw = self.read_body()
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ApiError(400, f"the body is not JSON: {e}")
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body

    def read_form(self, oauth=None):
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise ApiError(400, "send the body as application/x-www-form-urlencoded", oauth=oauth)
        raw = self.read_body()
        try:
            pairs = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise ApiError(400, "the form is not UTF-8", oauth=oauth)
        for name, values in pairs.items():
            if len(values) > 1:
                raise ApiError(400, f"{name} is given more than once", oauth=oauth)
        return {k: v[0] for k, v in pairs.items()}

    def send_body(self, status, content_type, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in list(headers) + self.extra_headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj, headers=()):
        self.send_body(status, "application/json; charset=utf-8", json.dumps(obj, ensure_ascii=False).encode("utf-8"), headers)

    def redirect(self, location):
        self.send_body(302, "text/plain; charset=utf-8", b"", [("Location", location)])

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s %s\n" % (time.strftime("%H:%M:%S"), self.client_address[0], fmt % args))

    def issuer(self):
        host = self.headers.get("Host", "") or "localhost"
        if not re.fullmatch(r"[A-Za-z0-9.:\[\]-]{1,100}", host):
            host = "localhost"
        return f"http://{host}"

    # -- sessions and language ------------------------------------------------------------

    def cookie(self, name):
        for part in self.headers.get("Cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name and value:
                return value
        return None

    def current_user(self):
        """The logged-in citizen's row (with the session's csrf), or None."""
        if self._user is False:
            self._user = None
            token = self.cookie("citypass_session")
            if token:
                self._user = self.db.execute(
                    "SELECT c.*, s.csrf, s.created AS auth_time FROM sessions s JOIN citizens c ON c.id = s.citizen_id "
                    "WHERE s.token = ? AND s.created > ?",
                    (token, time.time() - SESSION_MAX_AGE),
                ).fetchone()
        return self._user

    def require_user(self):
        user = self.current_user()
        if user is None:
            raise ApiError(401, "log in first")
        return user

    def lang(self):
        wanted = self.query.get("lang") or self.cookie("lang")
        if wanted in MESSAGES:
            return wanted
        accept = self.headers.get("Accept-Language", "").lower()
        return "zh-HK" if accept.startswith("zh") else "en"

    def paging(self):
        try:
            limit = min(max(int(self.query.get("limit", "20")), 1), 100)
            offset = max(int(self.query.get("offset", "0")), 0)
        except ValueError:
            raise ApiError(400, "limit and offset must be numbers")
        return limit, offset

    # -- accounts --------------------------------------------------------------------------

    def api_health(self):
        self.send_json(200, {"status": "ok", "service": "CityPass Digital Identity", "version": VERSION})

    def robots(self):
        self.send_body(200, "text/plain; charset=utf-8", b"User-agent: *\nDisallow: /api/\nDisallow: /oauth/\nDisallow: /debug/\n")

    def api_register(self):
        body = self.read_json()
        name_en = text_field(body, "name", 80)
        name_zh = text_field(body, "name_zh", 20, required=False)
        id_number = text_field(body, "id_number", 12).upper().replace(" ", "")
        phone = text_field(body, "phone", 20)
        password = text_field(body, "password", 128, strip=False)
        if not valid_id_number(id_number):
            raise ApiError(400, "id_number is not a valid identity card number, e.g. K482913(9)")
        if not PHONE_RE.match(phone):
            raise ApiError(400, "phone must be a mobile number, e.g. +852 9123 4567")
        if len(password) < 8:
            raise ApiError(400, "password must be at least 8 characters")
        salt = secrets.token_bytes(16)
        sub = "CP" + random_id(10)
        try:
            self.db.execute(
                "INSERT INTO citizens (sub, id_number, name_en, name_zh, phone, salt, pw_hash, sign_key, key_id, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sub, id_number, name_en, name_zh, phone, salt, hash_password(password, salt), secrets.token_bytes(32),
                 "CPK-" + secrets.token_hex(6), time.time()),
            )
        except sqlite3.IntegrityError:
            raise ApiError(409, "this identity card number is already registered")
        self.send_json(201, {"sub": sub, "name": name_en, "id_number": mask_id_number(id_number)})

    def api_login(self):
        body = self.read_json()
        id_number = text_field(body, "id_number", 12).upper().replace(" ", "")
        password = text_field(body, "password", 128, strip=False)
        row = self.db.execute("SELECT id, sub, name_en, salt, pw_hash FROM citizens WHERE id_number = ?", (id_number,)).fetchone()
        if row is None or not hmac.compare_digest(hash_password(password, row["salt"]), row["pw_hash"]):
            raise ApiError(401, "wrong identity card number or password")
        token, csrf = secrets.token_urlsafe(24), secrets.token_urlsafe(18)
        self.db.execute("INSERT INTO sessions (token, citizen_id, csrf, created) VALUES (?, ?, ?, ?)", (token, row["id"], csrf, time.time()))
        # Lax, not Strict: a relying service sends the citizen here with a top-level link.
        self.extra_headers.append(("Set-Cookie", f"citypass_session={token}; Path=/; HttpOnly; SameSite=Lax"))
        self.send_json(200, {"sub": row["sub"], "name": row["name_en"]})

    def api_logout(self):
        token = self.cookie("citypass_session")
        if token:
            self.db.execute("DELETE FROM sessions WHERE token = ?", (token,))
        self.extra_headers.append(("Set-Cookie", "citypass_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"))
        self.send_json(200, {"logged_out": True})

    def api_me(self):
        user = self.require_user()
        counts = {
            name: self.db.execute(f"SELECT COUNT(*) FROM {table} WHERE citizen_id = ?", (user["id"],)).fetchone()[0]
            for name, table in (("wallet_items", "wallet"), ("documents", "documents"))
        }
        self.send_json(200, {
            "sub": user["sub"],
            "name": user["name_en"],
            "name_zh": user["name_zh"],
            "id_number": mask_id_number(user["id_number"]),
            "phone": user["phone"],
            "key_id": user["key_id"],
            "registered": iso(user["created"]),
            **counts,
        })

    # -- the data wallet -------------------------------------------------------------------

    @staticmethod
    def wallet_json(row):
        return {
            "id": row["id"],
            "kind": row["kind"],
            "title": row["title"],
            "issuer": row["issuer"],
            "content": row["content"],
            "added": iso(row["created"]),
        }

    def api_wallet_list(self):
        user = self.require_user()
        limit, offset = self.paging()
        kind = self.query.get("kind", "")
        where, args = "WHERE citizen_id = ? ", [user["id"]]
        if kind:
            where += "AND kind = ? "
            args.append(kind)
        total = self.db.execute("SELECT COUNT(*) FROM wallet " + where, args).fetchone()[0]
        rows = self.db.execute("SELECT * FROM wallet " + where + "ORDER BY id DESC LIMIT ? OFFSET ?", args + [limit, offset])
        self.send_json(200, {"total": total, "items": [self.wallet_json(r) for r in rows]})

    def api_wallet_add(self):
        user = self.require_user()
        body = self.read_json()
        kind = text_field(body, "kind", 20)
        if kind not in WALLET_KINDS:
            raise ApiError(400, "kind must be one of " + ", ".join(WALLET_KINDS))
        title = text_field(body, "title", 200)
        issuer = text_field(body, "issuer", 120)
        content = text_field(body, "content", MAX_WALLET_CONTENT)
        count = self.db.execute("SELECT COUNT(*) FROM wallet WHERE citizen_id = ?", (user["id"],)).fetchone()[0]
        if count >= MAX_WALLET_ITEMS:
            raise ApiError(409, f"your wallet holds {MAX_WALLET_ITEMS} items already; remove one first")
        cur = self.db.execute(
            "INSERT INTO wallet (citizen_id, kind, title, issuer, content, created) VALUES (?, ?, ?, ?, ?, ?)",
            (user["id"], kind, title, issuer, content, time.time()),
        )
        row = self.db.execute("SELECT * FROM wallet WHERE id = ?", (cur.lastrowid,)).fetchone()
        self.send_json(201, self.wallet_json(row))

    def own_wallet_item(self, item_id):
        user = self.require_user()
        row = self.db.execute("SELECT * FROM wallet WHERE id = ? AND citizen_id = ?", (item_id, user["id"])).fetchone()
        if row is None:
            raise ApiError(404, f"no wallet item {item_id}")
        return row

    def api_wallet_item(self, item_id):
        self.send_json(200, self.wallet_json(self.own_wallet_item(item_id)))

    def api_wallet_delete(self, item_id):
        row = self.own_wallet_item(item_id)
        self.db.execute("DELETE FROM wallet WHERE id = ?", (row["id"],))
        self.send_json(200, {"deleted": item_id})

    # -- signing ---------------------------------------------------------------------------

    @staticmethod
    def document_json(row, with_content):
        out = {
            "ref": row["ref"],
            "title": row["title"],
            "digest": row["digest"],
            "signature": row["signature"],
            "signed_at": row["signed_at"],
        }
        if with_content:
            out["content"] = row["content"]
        return out

    def api_sign(self):
        user = self.require_user()
        body = self.read_json()
        title = text_field(body, "title", 200)
        content = text_field(body, "content", MAX_DOCUMENT, strip=False)
        if not content.strip():
            raise ApiError(400, "content is required")
        count = self.db.execute("SELECT COUNT(*) FROM documents WHERE citizen_id = ?", (user["id"],)).fetchone()[0]
        if count >= MAX_DOCUMENTS:
            raise ApiError(409, f"you have signed {MAX_DOCUMENTS} documents already; that is the most one citizen may keep")
        ref = "SD-" + random_id(10)
        now = time.time()
        signed_at = iso(now)
        digest = document_digest(content)
        signature = document_signature(user["sign_key"], ref, user["sub"], digest, signed_at)
        # The signing module's request trace, for troubleshooting.
        request = {"title": title, "content": content, "key_id": user["key_id"], "client": self.client_address[0],
                   "user_agent": self.headers.get("User-Agent", "")[:200]}
        self.db.execute("INSERT INTO sign_log (ref, sub, request, created) VALUES (?, ?, ?, ?)",
                        (ref, user["sub"], json.dumps(request, ensure_ascii=False), now))
        self.db.execute(
            "INSERT INTO documents (ref, citizen_id, title, content, digest, signature, signed_at, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (ref, user["id"], title, content, digest, signature, signed_at, now),
        )
        out = self.document_json({"ref": ref, "title": title, "digest": digest, "signature": signature, "signed_at": signed_at}, False)
        out["key_id"] = user["key_id"]
        self.send_json(201, out)

    def api_documents_list(self):
        user = self.require_user()
        limit, offset = self.paging()
        total = self.db.execute("SELECT COUNT(*) FROM documents WHERE citizen_id = ?", (user["id"],)).fetchone()[0]
        rows = self.db.execute("SELECT * FROM documents WHERE citizen_id = ? ORDER BY id DESC LIMIT ? OFFSET ?", (user["id"], limit, offset))
        self.send_json(200, {"total": total, "documents": [self.document_json(r, False) for r in rows]})

    def api_document(self, ref):
        user = self.require_user()
        row = self.db.execute("SELECT * FROM documents WHERE ref = ? AND citizen_id = ?", (ref, user["id"])).fetchone()
        if row is None:
            raise ApiError(404, f"no document {ref} among yours")
        self.send_json(200, self.document_json(row, True))

    def api_verify(self):
        body = self.read_json()
        ref = text_field(body, "ref", 20).upper()
        content = text_field(body, "content", MAX_DOCUMENT, strip=False)
        signature = text_field(body, "signature", 100)
        if not REF_RE.match(ref):
            raise ApiError(400, "ref must be a document reference such as SD-7K3M9Q2XWD")
        row = self.db.execute(
            "SELECT d.signed_at, c.sub, c.name_en, c.sign_key, c.key_id FROM documents d JOIN citizens c ON c.id = d.citizen_id WHERE d.ref = ?",
            (ref,),
        ).fetchone()
        if row is None:
            raise ApiError(404, f"no signed document {ref}")
        digest = document_digest(content)
        expected = document_signature(row["sign_key"], ref, row["sub"], digest, row["signed_at"])
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            self.send_json(200, {"valid": False, "ref": ref, "digest": digest})
            return
        self.send_json(200, {
            "valid": True,
            "ref": ref,
            "digest": digest,
            "signed_at": row["signed_at"],
            "signer": {"sub": row["sub"], "name": row["name_en"], "key_id": row["key_id"]},
        })

    def debug_sign_requests(self):
        if not DEBUG_TOOLS:
            raise ApiError(404, "no such endpoint: /debug/sign-requests")
        limit, offset = self.paging()
        where, args = "", []
        for field in ("ref", "sub"):
            if self.query.get(field):
                where += ("AND " if where else "WHERE ") + f"{field} = ? "
                args.append(self.query[field])
        rows = self.db.execute("SELECT * FROM sign_log " + where + "ORDER BY id DESC LIMIT ? OFFSET ?", args + [limit, offset])
        self.send_json(200, {
            "module": "citypass-signer",
            "build": "development",
            "requests": [
                {"ref": r["ref"], "sub": r["sub"], "received": iso(r["created"]), "request": json.loads(r["request"])}
                for r in rows
            ],
        })

    # -- relying services and consents -----------------------------------------------------

    def api_client_register(self):
        user = self.require_user()
        body = self.read_json()
        name = text_field(body, "name", 100)
        redirect_uri = text_field(body, "redirect_uri", 300)
        if not valid_redirect_uri(redirect_uri):
            raise ApiError(400, "redirect_uri must be an https:// address without a fragment (http:// only for localhost)")
        count = self.db.execute("SELECT COUNT(*) FROM clients WHERE owner_id = ?", (user["id"],)).fetchone()[0]
        if count >= MAX_CLIENTS:
            raise ApiError(409, f"you have {MAX_CLIENTS} relying services already")
        client_id = "rp-" + secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        self.db.execute(
            "INSERT INTO clients (client_id, secret, name, redirect_uri, owner_id, created) VALUES (?, ?, ?, ?, ?, ?)",
            (client_id, secret, name, redirect_uri, user["id"], time.time()),
        )
        self.send_json(201, {"client_id": client_id, "client_secret": secret, "name": name, "redirect_uri": redirect_uri})

    def api_clients_list(self):
        user = self.require_user()
        rows = self.db.execute("SELECT client_id, name, redirect_uri, created FROM clients WHERE owner_id = ? ORDER BY created DESC", (user["id"],))
        self.send_json(200, {"clients": [
            {"client_id": r["client_id"], "name": r["name"], "redirect_uri": r["redirect_uri"], "registered": iso(r["created"])}
            for r in rows
        ]})

    def api_consents(self):
        user = self.require_user()
        limit, offset = self.paging()
        rows = self.db.execute(
            "SELECT k.client_id, k.scope, k.created, c.name FROM consents k LEFT JOIN clients c ON c.client_id = k.client_id "
            "WHERE k.citizen_id = ? ORDER BY k.id DESC LIMIT ? OFFSET ?",
            (user["id"], limit, offset),
        )
        self.send_json(200, {"consents": [
            {"client_id": r["client_id"], "service": r["name"] or r["client_id"], "scope": r["scope"], "granted": iso(r["created"])}
            for r in rows
        ]})

    # -- OAuth 2.0 / OpenID Connect --------------------------------------------------------

    def api_discovery(self):
        iss = self.issuer()
        self.send_json(200, {
            "issuer": iss,
            "authorization_endpoint": iss + "/oauth/authorize",
            "token_endpoint": iss + "/oauth/token",
            "userinfo_endpoint": iss + "/oauth/userinfo",
            "revocation_endpoint": iss + "/oauth/revoke",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["HS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": list(SCOPES),
            "claims_supported": ["sub", "name", "name#zh-HK", "phone_number", "id_number", "wallet"],
        })

    def authorization_request(self, params):
        """The checked (client row, redirect_uri, scopes, state, nonce) of an authorisation
        request. Errors before the redirect URI is known are shown, never redirected."""
        client_id = params.get("client_id", "")
        client = self.db.execute("SELECT * FROM clients WHERE client_id = ?", (client_id,)).fetchone() if CLIENT_ID_RE.match(client_id) else None
        if client is None:
            raise ApiError(400, "unknown client_id", oauth="invalid_request")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri != client["redirect_uri"]:
            raise ApiError(400, "redirect_uri is not the one registered for this service", oauth="invalid_request")
        if params.get("response_type") != "code":
            raise ApiError(400, "response_type must be code", oauth="unsupported_response_type")
        scopes = params.get("scope", "").split()
        if "openid" not in scopes or any(s not in SCOPES for s in scopes) or len(scopes) > len(SCOPES):
            raise ApiError(400, "scope must hold openid and only these: " + " ".join(SCOPES), oauth="invalid_scope")
        state, nonce = params.get("state", ""), params.get("nonce", "")
        if len(state) > 200 or len(nonce) > 200:
            raise ApiError(400, "state and nonce are at most 200 characters", oauth="invalid_request")
        return client, redirect_uri, list(dict.fromkeys(scopes)), state, nonce

    def oauth_authorize(self):
        client, redirect_uri, scopes, state, nonce = self.authorization_request(self.query)
        user = self.current_user()
        if user is None:
            self.redirect("/login?next=" + quote(self.path, safe=""))
            return
        lang = self.lang()
        t = MESSAGES[lang]
        hidden = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
            for k, v in (("client_id", client["client_id"]), ("redirect_uri", redirect_uri), ("scope", " ".join(scopes)),
                         ("state", state), ("nonce", nonce), ("response_type", "code"), ("csrf", user["csrf"]))
        )
        claims = "".join(f"<li>{html.escape(t[SCOPES[s]])}</li>" for s in scopes)
        content = (
            f"<section><h1>{t['consent_title']}</h1>"
            f"<p><strong class=\"client\">{html.escape(client['name'])}</strong> {t['consent_intro']}</p><ul>{claims}</ul>"
            f"<p class=\"muted\">{t['consent_as']} {html.escape(user['name_en'])} ({html.escape(user['sub'])})</p>"
            f"<form method=\"post\" action=\"/oauth/authorize\">{hidden}"
            f"<button name=\"decision\" value=\"allow\">{t['allow']}</button> "
            f"<button name=\"decision\" value=\"deny\" class=\"secondary\">{t['deny']}</button></form></section>"
        )
        self.send_page(200, t["consent_title"], content)

    def oauth_consent(self):
        form = self.read_form()
        client, redirect_uri, scopes, state, nonce = self.authorization_request(form)
        user = self.require_user()
        if not hmac.compare_digest(form.get("csrf", "").encode(), user["csrf"].encode()):
            raise ApiError(403, "the consent form has expired; start again from the e-service")
        sep = "&" if "?" in redirect_uri else "?"
        if form.get("decision") != "allow":
            answer = {"error": "access_denied"}
        else:
            code = secrets.token_urlsafe(24)
            now = time.time()
            self.db.execute(
                "INSERT INTO codes (code, client_id, citizen_id, redirect_uri, scope, nonce, auth_time, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (code, client["client_id"], user["id"], redirect_uri, " ".join(scopes), nonce, int(user["auth_time"]), now),
            )
            self.db.execute("INSERT INTO consents (citizen_id, client_id, scope, created) VALUES (?, ?, ?, ?)",
                            (user["id"], client["client_id"], " ".join(scopes), now))
            answer = {"code": code}
        if state:
            answer["state"] = state
        self.redirect(redirect_uri + sep + urlencode(answer))

    def authenticate_client(self, form):
        """The relying service that calls, by HTTP Basic or client_secret_post."""
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                raw = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise ApiError(401, "bad Basic credentials", oauth="invalid_client")
            client_id, _, secret = raw.partition(":")
            client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        row = self.db.execute("SELECT * FROM clients WHERE client_id = ?", (client_id,)).fetchone()
        if row is None or not hmac.compare_digest(row["secret"].encode(), secret.encode()):
            raise ApiError(401, "client authentication failed", oauth="invalid_client",
                           headers=[("WWW-Authenticate", 'Basic realm="citypass"')])
        return row

    def oauth_token(self):
        form = self.read_form(oauth="invalid_request")
        client = self.authenticate_client(form)
        if form.get("grant_type") != "authorization_code":
            raise ApiError(400, "grant_type must be authorization_code", oauth="unsupported_grant_type")
        code = self.db.execute("SELECT * FROM codes WHERE code = ?", (form.get("code", ""),)).fetchone()
        now = time.time()
        if (code is None or code["client_id"] != client["client_id"] or code["redirect_uri"] != form.get("redirect_uri")
                or code["created"] < now - CODE_MAX_AGE):
            raise ApiError(400, "the code is unknown, expired, or not issued to this client and redirect_uri", oauth="invalid_grant")
        spent = self.db.execute("UPDATE codes SET used = 1 WHERE code = ? AND used = 0", (code["code"],)).rowcount
        if spent != 1:
            raise ApiError(400, "the code was used already", oauth="invalid_grant")
        citizen = self.db.execute("SELECT * FROM citizens WHERE id = ?", (code["citizen_id"],)).fetchone()
        if citizen is None:
            raise ApiError(400, "the citizen's account is gone", oauth="invalid_grant")
        iss, iat = self.issuer(), int(now)
        access = jwt_encode(
            {"iss": iss, "sub": citizen["sub"], "client_id": client["client_id"], "scope": code["scope"],
             "iat": iat, "exp": iat + ACCESS_TOKEN_MAX_AGE, "jti": secrets.token_urlsafe(12)},
            self.storage.token_key(self.db), "at+jwt", kid="citypass-at-1",
        )
        id_claims = {"iss": iss, "sub": citizen["sub"], "aud": client["client_id"], "iat": iat,
                     "exp": iat + ID_TOKEN_MAX_AGE, "auth_time": code["auth_time"]}
        if code["nonce"]:
            id_claims["nonce"] = code["nonce"]
        # ID tokens are signed with the client's secret (OpenID Connect Core §10.1, HS256).
        id_token = jwt_encode(id_claims, client["secret"].encode("utf-8"), "JWT")
        self.send_json(200, {"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_MAX_AGE,
                             "scope": code["scope"], "id_token": id_token})

    def bearer_claims(self):
        auth = self.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if token is None and self.command == "POST":
            token = self.read_form().get("access_token")
        challenge = [("WWW-Authenticate", 'Bearer realm="citypass", error="invalid_token"')]
        if not token:
            raise ApiError(401, "send the access token as a Bearer token", oauth="invalid_token", headers=challenge)
        try:
            header, claims = jwt_decode(token, self.storage.token_key(self.db))
        except TokenError as e:
            raise ApiError(401, f"the access token is not valid: {e}", oauth="invalid_token", headers=challenge)
        if header.get("typ") != "at+jwt" or not isinstance(claims.get("sub"), str) or not isinstance(claims.get("scope"), str):
            raise ApiError(401, "not an access token", oauth="invalid_token", headers=challenge)
        if self.db.execute("SELECT 1 FROM revoked WHERE jti = ?", (str(claims.get("jti")),)).fetchone():
            raise ApiError(401, "the access token was revoked", oauth="invalid_token", headers=challenge)
        if not self.db.execute("SELECT 1 FROM clients WHERE client_id = ?", (str(claims.get("client_id")),)).fetchone():
            raise ApiError(401, "the relying service is no longer registered", oauth="invalid_token", headers=challenge)
        return claims

    def oauth_userinfo(self):
        claims = self.bearer_claims()
        citizen = self.db.execute("SELECT * FROM citizens WHERE sub = ?", (claims["sub"],)).fetchone()
        if citizen is None:
            raise ApiError(401, "the citizen's account is gone", oauth="invalid_token")
        scopes = claims["scope"].split()
        info = {"sub": citizen["sub"]}
        if "profile" in scopes:
            info["name"] = citizen["name_en"]
            info["name#zh-HK"] = citizen["name_zh"]
        if "phone" in scopes:
            info["phone_number"] = citizen["phone"]
        if "idno" in scopes:
            info["id_number"] = citizen["id_number"]
        kinds = [s.split(".", 1)[1] for s in scopes if s.startswith("wallet.") and s.split(".", 1)[1] in WALLET_KINDS]
        if kinds:
            marks = ",".join("?" * len(kinds))
            rows = self.db.execute(
                f"SELECT * FROM wallet WHERE citizen_id = ? AND kind IN ({marks}) ORDER BY id DESC LIMIT ?",
                [citizen["id"], *kinds, MAX_WALLET_ITEMS],
            )
            info["wallet"] = [self.wallet_json(r) for r in rows]
        self.send_json(200, info)

    def oauth_revoke(self):
        form = self.read_form(oauth="invalid_request")
        client = self.authenticate_client(form)
        token = form.get("token", "")
        try:
            _, claims = jwt_decode(token, self.storage.token_key(self.db))
        except TokenError:
            claims = None  # RFC 7009: an unknown or invalid token is answered 200 all the same
        if claims and claims.get("client_id") == client["client_id"] and isinstance(claims.get("jti"), str):
            self.db.execute("INSERT OR IGNORE INTO revoked (jti, expires) VALUES (?, ?)", (claims["jti"], float(claims["exp"])))
        self.send_json(200, {})

    # -- pages -----------------------------------------------------------------------------

    def send_page(self, status, title, content):
        lang = self.lang()
        t = MESSAGES[lang]
        other = "en" if lang == "zh-HK" else "zh-HK"
        here = urlsplit(self.path)
        query = {k: v for k, v in self.query.items() if k != "lang"}
        query["lang"] = other
        switch = here.path + "?" + urlencode(query)
        user = self.current_user()
        if user is not None:
            nav = f'<a href="/account">{t["nav_account"]}</a>'
        else:
            nav = f'<a href="/login">{t["nav_login"]}</a> <a href="/register">{t["nav_register"]}</a>'
        self.extra_headers.append(("Content-Security-Policy", CSP))
        self.extra_headers.append(("Set-Cookie", f"lang={lang}; Path=/; SameSite=Lax"))
        page = (
            f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)} · {t['brand']}</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head><body>"
            f'<header><a class="brand" href="/">{t["brand"]}</a><nav><a href="/">{t["nav_home"]}</a> {nav} '
            f'<a href="/verify">{t["nav_verify"]}</a> <a href="{html.escape(switch)}" lang="{other}">{t["lang_other"]}</a></nav></header>'
            f"<main>{content}</main><footer>{t['footer']}</footer>"
            f'<script src="/static/app.js"></script></body></html>'
        )
        self.send_body(status, "text/html; charset=utf-8", page.encode("utf-8"))

    def page_home(self):
        t = MESSAGES[self.lang()]
        items = "".join(f"<li>{t[k]}</li>" for k in ("feature_login", "feature_wallet", "feature_consent", "feature_sign"))
        content = (
            f"<section><h1>{t['brand']}</h1><p>{t['tagline']}</p><p>{t['home_intro']}</p>"
            f"<h2>{t['home_features']}</h2><ul>{items}</ul><p class=\"muted\">{t['office']} · v{VERSION}</p></section>"
        )
        self.send_page(200, t["brand"], content)

    def page_login(self):
        t = MESSAGES[self.lang()]
        content = (
            f"<section><h1>{t['login_title']}</h1><form data-api=\"/api/login\" data-after=\"next\">"
            f"<label for=\"id_number\">{t['id_number']}</label><input id=\"id_number\" name=\"id_number\" required "
            f"placeholder=\"{t['id_number_hint']}\" autocomplete=\"username\">"
            f"<label for=\"password\">{t['password']}</label><input id=\"password\" name=\"password\" type=\"password\" required "
            f"autocomplete=\"current-password\"><button>{t['login_button']}</button>"
            f"<p class=\"out\" aria-live=\"polite\"></p></form></section>"
        )
        self.send_page(200, t["login_title"], content)

    def page_register(self):
        t = MESSAGES[self.lang()]
        fields = "".join(
            f"<label for=\"{n}\">{t[k]}</label><input id=\"{n}\" name=\"{n}\" type=\"{ty}\"{' required' if req else ''}{extra}>"
            for n, k, ty, req, extra in (
                ("name", "name_en", "text", True, ' autocomplete="name"'),
                ("name_zh", "name_zh", "text", False, ""),
                ("id_number", "id_number", "text", True, f" placeholder=\"{t['id_number_hint']}\""),
                ("phone", "phone", "tel", True, ' placeholder="+852 9123 4567" autocomplete="tel"'),
                ("password", "password", "password", True, ' minlength="8" autocomplete="new-password"'),
            )
        )
        content = (
            f"<section><h1>{t['register_title']}</h1><form data-api=\"/api/register\" data-after=\"message\" "
            f"data-message=\"{t['registered']}\">{fields}<button>{t['register_button']}</button>"
            f"<p class=\"out\" aria-live=\"polite\"></p></form></section>"
        )
        self.send_page(200, t["register_title"], content)

    def page_account(self):
        user = self.current_user()
        if user is None:
            self.redirect("/login?next=%2Faccount")
            return
        t = MESSAGES[self.lang()]
        e = html.escape
        uid = (user["id"],)
        profile = table(t, [], [
            (t["citypass_id"], f"<code>{e(user['sub'])}</code>"),
            (t["name_en"], e(user["name_en"])),
            (t["name_zh"], e(user["name_zh"])),
            (t["id_number"], e(mask_id_number(user["id_number"]))),
            (t["phone"], e(user["phone"])),
        ], "", row_headers=True)
        logout = f"<form data-api=\"/api/logout\"><button class=\"secondary\">{t['nav_logout']}</button></form>"

        items = self.db.execute("SELECT * FROM wallet WHERE citizen_id = ? ORDER BY id DESC LIMIT 50", uid).fetchall()
        wallet_rows = [
            (t["kind_" + r["kind"]], f"{e(r['title'])}<div class=\"muted\">{e(r['issuer'])}</div>", e(r["content"]),
             f"<form data-api=\"/api/wallet/{r['id']}\" data-method=\"DELETE\"><button class=\"secondary\">{t['remove_button']}</button></form>")
            for r in items
        ]
        kinds = "".join(f"<option value=\"{k}\">{t['kind_' + k]}</option>" for k in WALLET_KINDS)
        wallet_form = api_form("/api/wallet", t["add_button"], (
            f"<label for=\"kind\">{t['kind']}</label><select id=\"kind\" name=\"kind\">{kinds}</select>",
            field("w-title", "title", t["title"]),
            field("w-issuer", "issuer", t["issuer"]),
            field("w-content", "content", t["content"], rows=3),
        ))

        docs = self.db.execute("SELECT * FROM documents WHERE citizen_id = ? ORDER BY id DESC LIMIT 50", uid).fetchall()
        doc_rows = [
            (f"<code>{e(r['ref'])}</code>", e(r["title"]), e(r["signed_at"]), f"<code>{e(r['signature'])}</code>")
            for r in docs
        ]
        sign_form = api_form("/api/documents", t["sign_button"], (
            field("d-title", "title", t["title"]),
            field("d-content", "content", t["content"], rows=5),
        ))

        consents = self.db.execute(
            "SELECT k.scope, k.created, c.name, k.client_id FROM consents k LEFT JOIN clients c ON c.client_id = k.client_id "
            "WHERE k.citizen_id = ? ORDER BY k.id DESC LIMIT 20",
            uid,
        ).fetchall()
        consent_rows = [(e(r["name"] or r["client_id"]), e(r["scope"]), iso(r["created"])) for r in consents]

        clients = self.db.execute("SELECT * FROM clients WHERE owner_id = ? ORDER BY created DESC", uid).fetchall()
        client_rows = [(e(r["name"]), f"<code>{e(r['client_id'])}</code>", f"<code>{e(r['redirect_uri'])}</code>") for r in clients]
        client_form = api_form("/api/clients", t["client_register"], (
            field("c-name", "name", t["client_name"]),
            field("c-uri", "redirect_uri", t["redirect_uri"], kind="url"),
        ), f' data-after="client" data-note="{t["client_secret_once"]}"')

        content = (
            f"<section><h1>{t['account_title']}</h1>{profile}{logout}</section>"
            f"<section><h2>{t['wallet']}</h2>"
            + table(t, ["kind", "title", "content", None], wallet_rows, t["wallet_empty"])
            + f"<h3>{t['wallet_add']}</h3>{wallet_form}</section>"
            f"<section><h2>{t['documents']}</h2>"
            + table(t, ["reference", "title", "signed_at", "signature"], doc_rows, t["documents_empty"])
            + f"<h3>{t['sign_title']}</h3>{sign_form}</section>"
            f"<section><h2>{t['consents']}</h2>"
            + table(t, ["service", "shared", "when"], consent_rows, t["consents_empty"])
            + f"</section><section><h2>{t['clients']}</h2>"
            + table(t, ["client_name", "client_id", "redirect_uri"], client_rows, t["clients_empty"])
            + f"<h3>{t['client_register']}</h3>{client_form}</section>"
        )
        self.send_page(200, t["account_title"], content)

    def page_verify(self):
        t = MESSAGES[self.lang()]
        form = api_form("/api/verify", t["verify_button"], (
            field("v-ref", "ref", t["reference"], extra=' placeholder="SD-7K3M9Q2XWD"'),
            field("v-content", "content", t["content"], rows=6),
            field("v-sig", "signature", t["signature"]),
        ), f' data-after="verify" data-valid="{t["verify_valid"]}" data-invalid="{t["verify_invalid"]}"')
        self.send_page(200, t["verify_title"], f"<section><h1>{t['verify_title']}</h1><p>{t['verify_intro']}</p>{form}</section>")

    def page_not_found(self):
        t = MESSAGES[self.lang()]
        self.send_page(404, t["error_title"], f"<section><h1>{t['error_title']}</h1><p>{t['not_found']}</p></section>")


def cleaner(storage, every):
    while True:
        time.sleep(every)
        try:
            storage.cleanup()
        except Exception as e:  # a failed sweep is retried next time
            sys.stderr.write(f"cleanup failed: {e!r}\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description="CityPass Digital Identity (城市通數碼身份)")
    parser.add_argument("--host", default=os.environ.get("CITIZENID_HOST", "0.0.0.0"), help="address to listen on")
    parser.add_argument("--port", type=int, default=int(os.environ.get("CITIZENID_PORT", "8080")), help="port to listen on; 0 picks a free one")
    parser.add_argument("--data", default=os.environ.get("CITIZENID_DATA", "/tmp/citizenid"), help="folder for the database")
    parser.add_argument(
        "--retention-minutes",
        type=float,
        default=float(os.environ.get("CITIZENID_RETENTION_MINUTES", "60")),
        help="delete citizens and all they made after this long (keeps /tmp from filling up)",
    )
    args = parser.parse_args(argv)
    if args.retention_minutes <= 0:
        parser.error("--retention-minutes must be positive")

    storage = Storage(args.data, args.retention_minutes * 60)
    try:
        storage.init()
    except (OSError, sqlite3.Error) as e:
        parser.error(f"cannot use data folder {args.data}: {e}")
    Handler.storage = storage
    try:
        server = ThreadingHTTPServer((args.host, args.port), Handler)
    except OSError as e:
        parser.error(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}")
    server.daemon_threads = True
    threading.Thread(target=cleaner, args=(storage, 60), daemon=True).start()
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
