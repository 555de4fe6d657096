#!/usr/bin/env python3
"""TradeSeal Business Identity (商印通企業數碼身份): digital identity and e-signing for companies.

A company registers and gets a business registration number (BRN); its administrator logs in
with the BRN and a password, adds authorised signers (each logs in with a signer ID such as
BRN-01 and a signing PIN), and holds the company's e-licences and certificates (number,
conditions, validity, a confidential note). Authorised signers e-sign documents with the
company's server-held signing key (HMAC-SHA256, the key named by a key id); anyone can verify a
document against its signature, check a licence by its number, and open a signed document
through a share link its signer made for a counterparty.

Python 3 standard library only. Everything it writes lives under --data (default
/tmp/bizsign), because the container's root filesystem is read-only:

    DATA/bizsign.db     companies, keys, signers, sessions, licences, documents (SQLite)

Companies older than --retention-minutes are deleted with everything they hold, in the
background, so a long drill does not fill the small /tmp.
"""

import argparse
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
from urllib.parse import parse_qs, quote, urlencode, urlsplit

MAX_BODY = 64 * 1024
MAX_DOCUMENT = 16 * 1024
MAX_SIGNERS = 20
MAX_LICENCES = 50
MAX_DOCUMENTS = 200
MAX_CONDITIONS = 12
MAX_SHARE_DAYS = 31
# Cheap on purpose: a tick's checker traffic on a dozen services must fit in seconds on two
# cores, and a drill's accounts live for an hour. A real platform would pay for more rounds.
PBKDF2_ROUNDS = 1_000
# What a new authorised signer's PIN is when the administrator sets none: the welcome letter
# asks the signer to change it at first login.
INITIAL_PIN = "000000"
PIN_RE = re.compile(r"^[0-9]{6,8}$")
BRN_RE = re.compile(r"^[1-9][0-9]{7}$")
SIGNER_ID_RE = re.compile(r"^([1-9][0-9]{7})-([0-9]{2})$")
REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
DOC_PATH_RE = re.compile(r"^/api/documents/(TSD-[A-Z0-9]{8})(/share)?$")
LICENCE_PATH_RE = re.compile(r"^/api/licences/([A-Z]{3}-[0-9]{6})(/check|/certificate)?$")
SIGNER_PATH_RE = re.compile(r"^/api/signers/([1-9][0-9]{7}-[0-9]{2})$")

# Licence and certificate types: code, English and Chinese names, the issuing authority.
LICENCE_TYPES = {
    "FFL": ("Food Factory Licence", "食物製造廠牌照", "Municipal Hygiene Department", "市政衞生署"),
    "RST": ("General Restaurant Licence", "普通食肆牌照", "Municipal Hygiene Department", "市政衞生署"),
    "IEL": ("Import and Export Licence", "進出口許可證", "Trade Controls Office", "貿易管制處"),
    "LQP": ("Liquor Sale Permit", "酒類售賣許可證", "Liquor Permits Board", "酒類許可委員會"),
    "GHL": ("Guesthouse Licence", "賓館牌照", "Accommodation Licensing Office", "旅宿牌照事務處"),
    "RCC": ("Registered Contractor Certificate", "註冊承建商證書", "Works Registration Office", "工程登記處"),
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS companies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    brn TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    name_zh TEXT NOT NULL,
    salt BLOB NOT NULL,
    pw_hash BLOB NOT NULL,
    next_signer INTEGER NOT NULL DEFAULT 1,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
    kid TEXT PRIMARY KEY,
    company_id INTEGER NOT NULL,
    secret BLOB NOT NULL,
    active INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS keys_company ON keys (company_id);
CREATE TABLE IF NOT EXISTS signers (
    signer_id TEXT PRIMARY KEY,
    company_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    salt BLOB NOT NULL,
    pin_hash BLOB NOT NULL,
    pin_changed INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS signers_company ON signers (company_id);
CREATE TABLE IF NOT EXISTS sessions (
    token TEXT PRIMARY KEY,
    company_id INTEGER NOT NULL,
    signer_id TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS licences (
    number TEXT PRIMARY KEY,
    company_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    premises TEXT NOT NULL,
    conditions TEXT NOT NULL,
    confidential TEXT NOT NULL,
    issued REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS licences_company ON licences (company_id, issued);
CREATE TABLE IF NOT EXISTS documents (
    reference TEXT PRIMARY KEY,
    company_id INTEGER NOT NULL,
    signer_id TEXT NOT NULL,
    signer_name TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    signature TEXT NOT NULL,
    signed REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_company ON documents (company_id, signed);
CREATE INDEX IF NOT EXISTS documents_signature ON documents (signature);
"""


class ApiError(Exception):
    """An error answered to the client as JSON: {"error": message} with an HTTP status."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Storage:
    """The data folder and its SQLite database."""

    def __init__(self, root, retention):
        self.root = os.path.abspath(root)
        self.db_path = os.path.join(self.root, "bizsign.db")
        self.retention = retention
        self.schema_lock = threading.Lock()

    def connect(self):
        os.makedirs(self.root, exist_ok=True)
        # Under the lock, so no request sees a database file whose tables are not made yet.
        with self.schema_lock:
            fresh = not os.path.exists(self.db_path)
            conn = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
            if fresh:
                conn.executescript(SCHEMA)
        conn.row_factory = sqlite3.Row
        return conn

    def init(self):
        conn = self.connect()
        try:
            conn.executescript(SCHEMA)
        finally:
            conn.close()

    def cleanup(self, now=None):
        """Deletes companies past retention with their keys, signers, licences and documents."""
        now = time.time() if now is None else now
        cutoff = now - self.retention
        conn = self.connect()
        try:
            old = "(SELECT id FROM companies WHERE created < ?)"
            conn.execute("BEGIN IMMEDIATE")
            for table in ("keys", "signers", "licences", "documents"):
                conn.execute(f"DELETE FROM {table} WHERE company_id IN {old}", (cutoff,))
            conn.execute(f"DELETE FROM sessions WHERE created < ? OR company_id IN {old}", (cutoff, cutoff))
            conn.execute("DELETE FROM companies WHERE created < ?", (cutoff,))
            conn.execute("COMMIT")
        finally:
            conn.close()


def hash_secret(secret, salt):
    return hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt, PBKDF2_ROUNDS)


def mac_hex(key, message):
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def day(t):
    return time.strftime("%Y-%m-%d", time.gmtime(t))


def random_code(n):
    return "".join(secrets.choice(REF_ALPHABET) for _ in range(n))


def text_field(body, name, max_len, required=True, default=""):
    value = body.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    if name not in ("body", "content"):
        value = value.strip()
    if required and not value:
        raise ApiError(400, f"{name} is required")
    if len(value) > max_len:
        raise ApiError(400, f"{name} is longer than {max_len} characters")
    return value


def int_field(body, name, lo, hi, default):
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ApiError(400, f"{name} must be a whole number from {lo} to {hi}")
    return value


def licence_status(row, now=None):
    now = time.time() if now is None else now
    return "valid" if row["expires"] > now else "expired"


def licence_public(row):
    en, zh, authority, authority_zh = LICENCE_TYPES[row["type"]]
    return {
        "number": row["number"],
        "type": row["type"],
        "type_name": en,
        "type_name_zh": zh,
        "authority": authority,
        "authority_zh": authority_zh,
        "holder": {"brn": row["brn"], "name": row["company_name"], "name_zh": row["company_name_zh"]},
        "premises": row["premises"],
        "status": licence_status(row),
        "issued": day(row["issued"]),
        "expires": day(row["expires"]),
    }


def licence_full(row):
    out = licence_public(row)
    out["conditions"] = json.loads(row["conditions"])
    out["confidential_note"] = row["confidential"]
    return out


def document_meta(row):
    return {
        "reference": row["reference"],
        "title": row["title"],
        "signer_id": row["signer_id"],
        "signer": row["signer_name"],
        "signature": row["signature"],
        "kid": row["signature"].partition(".")[0],
        "signed_at": iso(row["signed"]),
    }


def document_full(row):
    out = document_meta(row)
    out["body"] = row["body"]
    return out


LICENCE_SELECT = (
    "SELECT l.*, c.brn, c.name AS company_name, c.name_zh AS company_name_zh "
    "FROM licences l JOIN companies c ON c.id = l.company_id "
)

# -- the web pages' words, one catalogue per language ---------------------------------------

MESSAGES = {
    "en": {
        "brand": "TradeSeal Business Identity",
        "brand_other": "商印通企業數碼身份",
        "operator": "Operated by the Business Facilitation Registry",
        "switch": "中文",
        "home": "Home",
        "intro": "One digital identity for your company: authorised signers, e-licences and certificates, and e-signed documents anyone can verify.",
        "verify": "Verify a signed document",
        "verify_help": "Paste the document's text exactly as signed and its signature.",
        "content": "Document text",
        "signature": "Signature",
        "check": "Check",
        "valid": "The signature is valid.",
        "invalid": "The signature is not valid for this text.",
        "signed_by": "Signed by",
        "reference": "Reference",
        "signer": "Authorised signer",
        "signed_at": "Signed at",
        "licence_check": "Check an e-licence",
        "licence_number": "Licence number",
        "licence": "E-licence",
        "type": "Type",
        "holder": "Holder",
        "premises": "Premises",
        "status": "Status",
        "valid_from": "Issued",
        "valid_to": "Expires",
        "authority": "Issued by",
        "status_valid": "Valid",
        "status_expired": "Expired",
        "no_licence": "No e-licence has this number.",
        "company": "Company",
        "brn": "Business registration number",
        "registered": "Registered",
        "signers": "Authorised signers",
        "keys": "Signing keys",
        "active": "active",
        "retired": "retired, still verifies",
        "no_company": "No company has this registration number.",
        "login": "Log in",
        "logout": "Log out",
        "user_id": "Business registration number or signer ID",
        "password": "Password or signing PIN",
        "login_failed": "Wrong ID, password or PIN.",
        "account": "My company",
        "role_admin": "Company administrator",
        "role_signer": "Authorised signer",
        "licences": "E-licences and certificates",
        "conditions": "Conditions",
        "confidential": "Confidential note",
        "documents": "Signed documents",
        "title": "Title",
        "none": "None yet.",
        "shared": "Shared signed document",
        "shared_bad": "This share link is not valid or has expired.",
        "not_found": "Page not found.",
        "api": "Companies and their systems use the JSON API under /api/.",
    },
    "zh-HK": {
        "brand": "商印通企業數碼身份",
        "brand_other": "TradeSeal Business Identity",
        "operator": "由商貿便利登記處營運",
        "switch": "English",
        "home": "主頁",
        "intro": "貴公司的一站式數碼身份：授權簽署人、電子牌照及證書，以及任何人都可核實的電子簽署文件。",
        "verify": "核實已簽署文件",
        "verify_help": "請貼上與簽署時完全相同的文件內容及其簽署。",
        "content": "文件內容",
        "signature": "簽署",
        "check": "核實",
        "valid": "簽署有效。",
        "invalid": "此簽署與文件內容不符。",
        "signed_by": "簽署公司",
        "reference": "文件編號",
        "signer": "授權簽署人",
        "signed_at": "簽署時間",
        "licence_check": "查核電子牌照",
        "licence_number": "牌照號碼",
        "licence": "電子牌照",
        "type": "類別",
        "holder": "持牌人",
        "premises": "處所",
        "status": "狀態",
        "valid_from": "發出日期",
        "valid_to": "屆滿日期",
        "authority": "發牌機構",
        "status_valid": "有效",
        "status_expired": "已屆滿",
        "no_licence": "沒有此號碼的電子牌照。",
        "company": "公司",
        "brn": "商業登記號碼",
        "registered": "登記日期",
        "signers": "授權簽署人",
        "keys": "簽署密鑰",
        "active": "使用中",
        "retired": "已停用，仍可核實",
        "no_company": "沒有此登記號碼的公司。",
        "login": "登入",
        "logout": "登出",
        "user_id": "商業登記號碼或簽署人編號",
        "password": "密碼或簽署密碼",
        "login_failed": "編號、密碼或簽署密碼錯誤。",
        "account": "我的公司",
        "role_admin": "公司管理員",
        "role_signer": "授權簽署人",
        "licences": "電子牌照及證書",
        "conditions": "牌照條件",
        "confidential": "機密備註",
        "documents": "已簽署文件",
        "title": "標題",
        "none": "暫時沒有。",
        "shared": "分享的已簽署文件",
        "shared_bad": "此分享連結無效或已過期。",
        "not_found": "找不到此頁。",
        "api": "公司及其系統可使用 /api/ 下的 JSON 介面。",
    },
}

PAGE_STYLE = """
body { font-family: system-ui, "Noto Sans TC", sans-serif; margin: 0; color: #1b2430; background: #f3f5f7; }
header { background: #7a1f2b; color: #fff; padding: 1em 2em; display: flex; justify-content: space-between; align-items: baseline; flex-wrap: wrap; }
header a { color: #fff; }
header .brand { font-weight: bold; font-size: 1.2em; text-decoration: none; }
main { padding: 1em 2em; max-width: 60em; }
table { border-collapse: collapse; background: #fff; margin: .5em 0 1em; }
td, th { border: 1px solid #c9d0d8; padding: .3em .6em; text-align: left; vertical-align: top; }
textarea, input { font: inherit; }
textarea { width: 100%; min-height: 8em; }
pre { background: #fff; border: 1px solid #c9d0d8; padding: 1em; white-space: pre-wrap; }
.ok { color: #135e2f; font-weight: bold; }
.bad { color: #8f1a1a; font-weight: bold; }
.muted { color: #55606c; font-size: .9em; }
header .muted { color: #f6e3e6; }
a:focus, button:focus, input:focus, textarea:focus { outline: 3px solid #e0a800; }
"""


class Handler(BaseHTTPRequestHandler):
    server_version = "TradeSeal/2.3"
    timeout = 15
    storage: Storage = None
    csrf_key: bytes = b""

    # -- plumbing -----------------------------------------------------------------------

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
        self.__dict__.pop("_user", None)
        self.is_page = not url.path.startswith("/api/")
        try:
            self.db = self.storage.connect()
            handler = self.find_route(method, url.path)
            handler()
        except ApiError as e:
            if self.is_page:
                self.send_page(e.status, "", f"<p>{html.escape(e.message)}</p>")
            else:
                self.send_json(e.status, {"error": e.message})
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
            ("GET", "/style.css"): self.page_style,
            ("GET", "/verify"): self.page_verify,
            ("GET", "/licences/check"): self.page_licence_lookup,
            ("POST", "/verify"): self.page_verify,
            ("GET", "/login"): self.page_login,
            ("POST", "/login"): self.page_login,
            ("POST", "/logout"): self.page_logout,
            ("GET", "/account"): self.page_account,
            ("POST", "/api/companies"): self.api_register,
            ("POST", "/api/login"): self.api_login,
            ("POST", "/api/logout"): self.api_logout,
            ("GET", "/api/me"): self.api_me,
            ("POST", "/api/pin"): self.api_change_pin,
            ("GET", "/api/signers"): self.api_list_signers,
            ("POST", "/api/signers"): self.api_add_signer,
            ("POST", "/api/keys/rotate"): self.api_rotate_key,
            ("GET", "/api/licence-types"): self.api_licence_types,
            ("GET", "/api/licences"): self.api_list_licences,
            ("POST", "/api/licences"): self.api_issue_licence,
            ("GET", "/api/documents"): self.api_list_documents,
            ("POST", "/api/documents"): self.api_sign_document,
            ("POST", "/api/verify"): self.api_verify,
        }
        if (method, path) in routes:
            return routes[(method, path)]
        dynamic = [
            (DOC_PATH_RE, {("GET", ""): self.api_document, ("POST", "/share"): self.api_share}),
            (
                LICENCE_PATH_RE,
                {("GET", ""): self.api_licence, ("GET", "/check"): self.api_licence_check, ("GET", "/certificate"): self.api_certificate},
            ),
            (SIGNER_PATH_RE, {("DELETE", None): self.api_revoke_signer}),
            (re.compile(r"^/api/companies/([0-9]{8})$"), {("GET", None): self.api_company}),
            (re.compile(r"^/api/shared/(TSD-[A-Z0-9]{8})$"), {("GET", None): self.api_shared}),
            (re.compile(r"^/companies/([0-9]{8})$"), {("GET", None): self.page_company}),
            (re.compile(r"^/licences/([A-Z]{3}-[0-9]{6})$"), {("GET", None): self.page_licence}),
            (re.compile(r"^/shared/(TSD-[A-Z0-9]{8})$"), {("GET", None): self.page_shared}),
        ]
        for pattern, by_sub in dynamic:
            m = pattern.match(path)
            if not m:
                continue
            sub = (m.group(2) or "") if pattern.groups > 1 else None
            handler = by_sub.get((method, sub))
            if handler is None:
                raise ApiError(405, f"{method} is not allowed on {path}")
            return lambda: handler(m.group(1))
        if any(p == path for (_, p) in routes):
            raise ApiError(405, f"{method} is not allowed on {path}")
        raise ApiError(404, f"no such page: {path}")

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
        raw = self.read_body()
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ApiError(400, f"the body is not JSON: {e}")
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body

    def read_form(self):
        try:
            text = self.read_body().decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "the form is not UTF-8")
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}

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

    def send_json(self, status, obj):
        self.send_body(status, "application/json; charset=utf-8", json.dumps(obj, ensure_ascii=False).encode("utf-8"))

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s %s\n" % (time.strftime("%H:%M:%S"), self.client_address[0], fmt % args))

    # -- pages' plumbing ----------------------------------------------------------------

    def lang(self):
        return "zh-HK" if self.query.get("lang", "").lower().startswith("zh") else "en"

    def t(self, key):
        return MESSAGES[self.lang()][key]

    def url(self, path, **params):
        """A link to one of our pages, keeping the page's language."""
        if self.lang() != "en":
            params["lang"] = self.lang()
        return path + ("?" + urlencode(params) if params else "")

    def href(self, path, **params):
        return html.escape(self.url(path, **params))

    def redirect(self, path):
        self.send_body(303, "text/plain; charset=utf-8", b"", [("Location", self.url(path))])

    def send_page(self, status, title, content):
        lang = self.lang()
        other = "en" if lang != "en" else "zh-HK"
        here = urlsplit(self.path).path
        params = {k: v for k, v in self.query.items() if k != "lang"}
        params["lang"] = other
        switch = html.escape(here + "?" + urlencode(params))
        user = self.current_user()
        account = (
            f"<a href=\"{self.href('/account')}\">{self.t('account')}</a>"
            if user
            else f"<a href=\"{self.href('/login')}\">{self.t('login')}</a>"
        )
        page = (
            f"<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title + ' · ' if title else '')}{self.t('brand')}</title>"
            "<link rel=\"stylesheet\" href=\"/style.css\"></head><body>"
            f"<header><a class=\"brand\" href=\"{self.href('/')}\">{self.t('brand')}</a>"
            f"<span class=\"muted\" lang=\"{other}\">{self.t('brand_other')}</span>"
            f"<nav><a href=\"{self.href('/verify')}\">{self.t('verify')}</a> · {account} · "
            f"<a href=\"{switch}\" lang=\"{other}\">{self.t('switch')}</a></nav></header>"
            f"<main>{content}</main></body></html>"
        )
        headers = [("Content-Security-Policy", "default-src 'self'; form-action 'self'; frame-ancestors 'none'")]
        self.send_body(status, "text/html; charset=utf-8", page.encode("utf-8"), headers)

    def csrf_token(self, session):
        return hmac.new(self.csrf_key, session.encode(), hashlib.sha256).hexdigest()[:32]

    # -- sessions -----------------------------------------------------------------------

    def session_token(self):
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "session" and value:
                return value
        return None

    def current_user(self):
        """The logged-in user: company fields, plus signer fields for an authorised signer."""
        if not hasattr(self, "_user"):
            token = self.session_token()
            self._user = self.session_user(token) if token else None
        return self._user

    def session_user(self, token):
        row = self.db.execute(
            "SELECT c.id AS company_id, c.brn, c.name, c.name_zh, s.signer_id, g.name AS signer_name, "
            "g.title AS signer_title, g.pin_changed FROM sessions s JOIN companies c ON c.id = s.company_id "
            "LEFT JOIN signers g ON g.signer_id = s.signer_id AND g.revoked = 0 WHERE s.token = ?",
            (token,),
        ).fetchone()
        # A revoked signer's sessions are deleted at once; this catches any left behind.
        if row is None or (row["signer_id"] is not None and row["signer_name"] is None):
            return None
        return row

    def require_user(self):
        user = self.current_user()
        if user is None:
            raise ApiError(401, "log in first")
        return user

    def require_admin(self):
        user = self.require_user()
        if user["signer_id"] is not None:
            raise ApiError(403, "only the company administrator may do this")
        return user

    def require_signer(self):
        user = self.require_user()
        if user["signer_id"] is None:
            raise ApiError(403, "only an authorised signer may do this; the administrator adds signers")
        return user

    def authenticate(self, user_id, password):
        """(company_id, signer_id or None) for good credentials; None otherwise."""
        user_id = user_id.strip().upper()
        if BRN_RE.match(user_id):
            row = self.db.execute("SELECT id, salt, pw_hash FROM companies WHERE brn = ?", (user_id,)).fetchone()
            if row and hmac.compare_digest(hash_secret(password, row["salt"]), row["pw_hash"]):
                return row["id"], None
            return None
        if SIGNER_ID_RE.match(user_id):
            row = self.db.execute(
                "SELECT company_id, salt, pin_hash FROM signers WHERE signer_id = ? AND revoked = 0", (user_id,)
            ).fetchone()
            if row and hmac.compare_digest(hash_secret(password, row["salt"]), row["pin_hash"]):
                return row["company_id"], user_id
        return None

    def start_session(self, company_id, signer_id):
        token = secrets.token_hex(24)
        self.db.execute(
            "INSERT INTO sessions (token, company_id, signer_id, created) VALUES (?, ?, ?, ?)",
            (token, company_id, signer_id, time.time()),
        )
        self.extra_headers.append(("Set-Cookie", f"session={token}; Path=/; HttpOnly; SameSite=Strict"))
        return token

    def end_session(self):
        token = self.session_token()
        if token:
            self.db.execute("DELETE FROM sessions WHERE token = ?", (token,))
        self.extra_headers.append(("Set-Cookie", "session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"))

    def me(self, user):
        out = {
            "company": {"brn": user["brn"], "name": user["name"], "name_zh": user["name_zh"]},
            "role": "admin" if user["signer_id"] is None else "signer",
            "user_id": user["signer_id"] or user["brn"],
        }
        if user["signer_id"] is not None:
            out.update(name=user["signer_name"], title=user["signer_title"], pin_changed=bool(user["pin_changed"]))
        return out

    # -- companies and accounts -----------------------------------------------------------

    def api_register(self):
        body = self.read_json()
        name = text_field(body, "name", 120)
        name_zh = text_field(body, "name_zh", 60, required=False)
        password = text_field(body, "password", 128)
        if len(password) < 10:
            raise ApiError(400, "the administrator's password must be at least 10 characters")
        salt = secrets.token_bytes(16)
        pw_hash = hash_secret(password, salt)
        now = time.time()
        for _ in range(20):
            brn = str(secrets.randbelow(90_000_000) + 10_000_000)
            try:
                cur = self.db.execute(
                    "INSERT INTO companies (brn, name, name_zh, salt, pw_hash, created) VALUES (?, ?, ?, ?, ?, ?)",
                    (brn, name, name_zh, salt, pw_hash, now),
                )
                break
            except sqlite3.IntegrityError:
                continue
        else:
            raise ApiError(503, "could not assign a registration number; try again")
        kid = self.new_key(cur.lastrowid)
        self.send_json(201, {"brn": brn, "name": name, "name_zh": name_zh, "user_id": brn, "kid": kid})

    def new_key(self, company_id):
        kid = "k" + secrets.token_hex(6)
        self.db.execute("UPDATE keys SET active = 0 WHERE company_id = ?", (company_id,))
        self.db.execute(
            "INSERT INTO keys (kid, company_id, secret, active, created) VALUES (?, ?, ?, 1, ?)",
            (kid, company_id, secrets.token_bytes(32), time.time()),
        )
        return kid

    def api_login(self):
        body = self.read_json()
        user_id = text_field(body, "user_id", 16).upper()
        password = text_field(body, "password", 128)
        found = self.authenticate(user_id, password)
        if found is None:
            raise ApiError(401, "wrong ID, password or PIN")
        token = self.start_session(*found)
        self.send_json(200, self.me(self.session_user(token)))

    def api_logout(self):
        user = self.current_user()
        self.end_session()
        self.send_json(200, {"logged_out": user is not None})

    def api_me(self):
        self.send_json(200, self.me(self.require_user()))

    def api_company(self, brn):
        row = self.db.execute("SELECT id, brn, name, name_zh, created FROM companies WHERE brn = ?", (brn,)).fetchone()
        if row is None:
            raise ApiError(404, f"no company {brn}")
        self.send_json(200, self.company_public(row))

    def company_public(self, row):
        keys = self.db.execute("SELECT kid, active, created FROM keys WHERE company_id = ? ORDER BY created DESC", (row["id"],))
        signers = self.db.execute("SELECT COUNT(*) FROM signers WHERE company_id = ? AND revoked = 0", (row["id"],)).fetchone()[0]
        licences = self.db.execute(
            "SELECT number, type, expires FROM licences WHERE company_id = ? ORDER BY issued DESC LIMIT 50", (row["id"],)
        )
        return {
            "brn": row["brn"],
            "name": row["name"],
            "name_zh": row["name_zh"],
            "registered": day(row["created"]),
            "signers": signers,
            "keys": [{"kid": k["kid"], "active": bool(k["active"]), "created": iso(k["created"])} for k in keys],
            "licences": [{"number": r["number"], "type": r["type"], "status": licence_status(r)} for r in licences],
        }

    def api_rotate_key(self):
        user = self.require_admin()
        count = self.db.execute("SELECT COUNT(*) FROM keys WHERE company_id = ?", (user["company_id"],)).fetchone()[0]
        if count >= 10:
            raise ApiError(409, "a company keeps at most 10 signing keys")
        previous = self.db.execute("SELECT kid FROM keys WHERE company_id = ? AND active = 1", (user["company_id"],)).fetchone()
        kid = self.new_key(user["company_id"])
        self.send_json(201, {"kid": kid, "previous": previous["kid"] if previous else None})

    # -- authorised signers ---------------------------------------------------------------

    def api_add_signer(self):
        user = self.require_admin()
        body = self.read_json()
        name = text_field(body, "name", 80)
        title = text_field(body, "title", 80, required=False)
        pin = text_field(body, "pin", 8, required=False)
        issued = None
        if pin:
            if not PIN_RE.match(pin):
                raise ApiError(400, "a signing PIN is 6 to 8 digits")
        else:
            # The platform issues the initial PIN; the signer is asked to change it at first login.
            pin = issued = INITIAL_PIN
        count = self.db.execute(
            "SELECT COUNT(*) FROM signers WHERE company_id = ? AND revoked = 0", (user["company_id"],)
        ).fetchone()[0]
        if count >= MAX_SIGNERS:
            raise ApiError(409, f"a company has at most {MAX_SIGNERS} authorised signers")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            seq = self.db.execute("SELECT next_signer FROM companies WHERE id = ?", (user["company_id"],)).fetchone()[0]
            if seq > 99:
                raise ApiError(409, "this company has used all its signer IDs")
            signer_id = f"{user['brn']}-{seq:02d}"
            salt = secrets.token_bytes(16)
            self.db.execute("UPDATE companies SET next_signer = ? WHERE id = ?", (seq + 1, user["company_id"]))
            self.db.execute(
                "INSERT INTO signers (signer_id, company_id, name, title, salt, pin_hash, pin_changed, created) "
                "VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
                (signer_id, user["company_id"], name, title, salt, hash_secret(pin, salt), time.time()),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.send_json(201, {"signer_id": signer_id, "name": name, "title": title, "initial_pin": issued})

    def api_list_signers(self):
        user = self.require_user()
        rows = self.db.execute(
            "SELECT signer_id, name, title, pin_changed, created FROM signers WHERE company_id = ? AND revoked = 0 "
            "ORDER BY signer_id",
            (user["company_id"],),
        )
        self.send_json(
            200,
            {
                "signers": [
                    {"signer_id": r["signer_id"], "name": r["name"], "title": r["title"], "pin_changed": bool(r["pin_changed"]), "added": iso(r["created"])}
                    for r in rows
                ]
            },
        )

    def api_revoke_signer(self, signer_id):
        user = self.require_admin()
        cur = self.db.execute(
            "UPDATE signers SET revoked = 1 WHERE signer_id = ? AND company_id = ? AND revoked = 0",
            (signer_id, user["company_id"]),
        )
        if cur.rowcount == 0:
            raise ApiError(404, f"no authorised signer {signer_id} in your company")
        self.db.execute("DELETE FROM sessions WHERE signer_id = ?", (signer_id,))
        self.send_json(200, {"revoked": signer_id})

    def api_change_pin(self):
        user = self.require_signer()
        body = self.read_json()
        old = text_field(body, "old_pin", 8)
        new = text_field(body, "new_pin", 8)
        if not PIN_RE.match(new):
            raise ApiError(400, "a signing PIN is 6 to 8 digits")
        if new == old:
            raise ApiError(400, "choose a PIN different from the old one")
        if self.authenticate(user["signer_id"], old) is None:
            raise ApiError(403, "the old PIN is wrong")
        salt = secrets.token_bytes(16)
        self.db.execute(
            "UPDATE signers SET salt = ?, pin_hash = ?, pin_changed = 1 WHERE signer_id = ?",
            (salt, hash_secret(new, salt), user["signer_id"]),
        )
        self.send_json(200, {"signer_id": user["signer_id"], "pin_changed": True})

    # -- e-licences and certificates ------------------------------------------------------

    def api_licence_types(self):
        self.send_json(
            200,
            {
                "types": [
                    {"code": code, "name": en, "name_zh": zh, "authority": a, "authority_zh": a_zh}
                    for code, (en, zh, a, a_zh) in LICENCE_TYPES.items()
                ]
            },
        )

    def api_issue_licence(self):
        user = self.require_admin()
        body = self.read_json()
        kind = text_field(body, "type", 3).upper()
        if kind not in LICENCE_TYPES:
            raise ApiError(400, "type must be one of " + ", ".join(LICENCE_TYPES))
        premises = text_field(body, "premises", 200)
        conditions = body.get("conditions", [])
        if not isinstance(conditions, list) or len(conditions) > MAX_CONDITIONS or not all(
            isinstance(c, str) and 0 < len(c.strip()) <= 500 for c in conditions
        ):
            raise ApiError(400, f"conditions must be a list of at most {MAX_CONDITIONS} texts of 1 to 500 characters")
        confidential = text_field(body, "confidential_note", 2000, required=False)
        months = int_field(body, "months", 1, 60, 12)
        count = self.db.execute("SELECT COUNT(*) FROM licences WHERE company_id = ?", (user["company_id"],)).fetchone()[0]
        if count >= MAX_LICENCES:
            raise ApiError(409, f"a company holds at most {MAX_LICENCES} e-licences here")
        now = time.time()
        for _ in range(20):
            number = f"{kind}-{secrets.randbelow(900_000) + 100_000}"
            try:
                self.db.execute(
                    "INSERT INTO licences (number, company_id, type, premises, conditions, confidential, issued, expires) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (number, user["company_id"], kind, premises, json.dumps([c.strip() for c in conditions]), confidential, now, now + months * 30.44 * 86400),
                )
                break
            except sqlite3.IntegrityError:
                continue
        else:
            raise ApiError(503, "could not assign a licence number; try again")
        self.send_json(201, licence_full(self.licence_row(number)))

    def licence_row(self, number):
        return self.db.execute(LICENCE_SELECT + "WHERE l.number = ?", (number,)).fetchone()

    def own_licence(self, number):
        """The licence if the logged-in user's company holds it; 404 otherwise."""
        user = self.require_user()
        row = self.licence_row(number)
        if row is None or row["company_id"] != user["company_id"]:
            raise ApiError(404, f"your company holds no e-licence {number}")
        return row

    def paging(self):
        try:
            limit = min(max(int(self.query.get("limit", "50")), 1), 100)
            offset = max(int(self.query.get("offset", "0")), 0)
        except ValueError:
            raise ApiError(400, "limit and offset must be numbers")
        return limit, offset

    def api_list_licences(self):
        user = self.require_user()
        limit, offset = self.paging()
        total = self.db.execute("SELECT COUNT(*) FROM licences WHERE company_id = ?", (user["company_id"],)).fetchone()[0]
        rows = self.db.execute(
            LICENCE_SELECT + "WHERE l.company_id = ? ORDER BY l.issued DESC LIMIT ? OFFSET ?", (user["company_id"], limit, offset)
        )
        self.send_json(200, {"total": total, "licences": [licence_full(r) for r in rows]})

    def api_licence(self, number):
        self.send_json(200, licence_full(self.own_licence(number)))

    def api_licence_check(self, number):
        row = self.licence_row(number)
        if row is None:
            raise ApiError(404, f"no e-licence {number}")
        self.send_json(200, licence_public(row))

    def api_certificate(self, number):
        row = self.own_licence(number)
        lic = licence_full(row)
        lines = [
            "TRADESEAL BUSINESS IDENTITY · 商印通企業數碼身份",
            f"{lic['type_name']} {lic['type_name_zh']}",
            "",
            f"Licence number 牌照號碼:   {lic['number']}",
            f"Issued by 發牌機構:        {lic['authority']} {lic['authority_zh']}",
            f"Holder 持牌人:             {lic['holder']['name']} {lic['holder']['name_zh']}".rstrip(),
            f"BRN 商業登記號碼:          {lic['holder']['brn']}",
            f"Premises 處所:             {lic['premises']}",
            f"Valid 有效期:              {lic['issued']} to 至 {lic['expires']}",
            "",
            "Conditions 牌照條件:",
        ]
        lines += [f"  {i}. {c}" for i, c in enumerate(lic["conditions"], 1)] or ["  (none 沒有)"]
        if lic["confidential_note"]:
            lines += ["", "Confidential note 機密備註 (holder only 只供持牌人):", "  " + lic["confidential_note"]]
        lines += ["", f"Check this e-licence 查核此電子牌照: /licences/{lic['number']}", ""]
        self.send_body(
            200,
            "text/plain; charset=utf-8",
            "\n".join(lines).encode("utf-8"),
            [("Content-Disposition", f"attachment; filename=\"{number}.txt\"")],
        )

    # -- e-signed documents ---------------------------------------------------------------

    def api_sign_document(self):
        user = self.require_signer()
        body = self.read_json()
        title = text_field(body, "title", 200)
        text = text_field(body, "body", MAX_DOCUMENT)
        pin = text_field(body, "pin", 8)
        # Signing asks for the PIN again, as a smart card would.
        if self.authenticate(user["signer_id"], pin) is None:
            raise ApiError(403, "the signing PIN is wrong")
        count = self.db.execute("SELECT COUNT(*) FROM documents WHERE company_id = ?", (user["company_id"],)).fetchone()[0]
        if count >= MAX_DOCUMENTS:
            raise ApiError(409, f"a company keeps at most {MAX_DOCUMENTS} signed documents here")
        key = self.db.execute("SELECT kid, secret FROM keys WHERE company_id = ? AND active = 1", (user["company_id"],)).fetchone()
        signature = f"{key['kid']}.{mac_hex(key['secret'], text)}"
        for _ in range(20):
            reference = "TSD-" + random_code(8)
            try:
                self.db.execute(
                    "INSERT INTO documents (reference, company_id, signer_id, signer_name, title, body, signature, signed) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (reference, user["company_id"], user["signer_id"], user["signer_name"], title, text, signature, time.time()),
                )
                break
            except sqlite3.IntegrityError:
                continue
        else:
            raise ApiError(503, "could not assign a reference; try again")
        row = self.db.execute("SELECT * FROM documents WHERE reference = ?", (reference,)).fetchone()
        self.send_json(201, document_meta(row))

    def own_document(self, reference):
        """The document if the logged-in user may read it: its signer or the company's
        administrator; 404 otherwise."""
        user = self.require_user()
        row = self.db.execute("SELECT * FROM documents WHERE reference = ?", (reference,)).fetchone()
        if (
            row is None
            or row["company_id"] != user["company_id"]
            or (user["signer_id"] is not None and user["signer_id"] != row["signer_id"])
        ):
            raise ApiError(404, f"no document {reference} of yours")
        return row

    def api_list_documents(self):
        user = self.require_user()
        limit, offset = self.paging()
        where, args = "WHERE company_id = ? ", [user["company_id"]]
        if user["signer_id"] is not None:
            where += "AND signer_id = ? "
            args.append(user["signer_id"])
        total = self.db.execute("SELECT COUNT(*) FROM documents " + where, args).fetchone()[0]
        rows = self.db.execute("SELECT * FROM documents " + where + "ORDER BY signed DESC LIMIT ? OFFSET ?", args + [limit, offset])
        self.send_json(200, {"total": total, "documents": [document_meta(r) for r in rows]})

    def api_document(self, reference):
        self.send_json(200, document_full(self.own_document(reference)))

    def api_share(self, reference):
        """A link a counterparty opens without an account: the reference and an expiry, with a
        MAC under the company's signing key (its key id in the link, so rotating the key does
        not break links already sent)."""
        user = self.require_user()
        row = self.own_document(reference)
        body = self.read_json()
        days = int_field(body, "days", 1, MAX_SHARE_DAYS, 7)
        key = self.db.execute("SELECT kid, secret FROM keys WHERE company_id = ? AND active = 1", (user["company_id"],)).fetchone()
        expires = int(time.time()) + days * 86400
        mac = mac_hex(key["secret"], f"{row['reference']}|{expires}")
        params = urlencode({"k": key["kid"], "e": expires, "s": mac})
        self.send_json(
            201,
            {
                "reference": row["reference"],
                "kid": key["kid"],
                "expires": expires,
                "mac": mac,
                "url": f"/shared/{row['reference']}?{params}",
                "api": f"/api/shared/{row['reference']}?{params}",
            },
        )

    def shared_document(self, reference):
        """The document a share link opens; None when the link is not valid."""
        kid, expires, mac = self.query.get("k", ""), self.query.get("e", ""), self.query.get("s", "")
        if not (kid and re.fullmatch(r"[0-9]{1,12}", expires) and mac):
            return None
        now = time.time()
        if not now < int(expires) <= now + (MAX_SHARE_DAYS + 1) * 86400:
            return None
        row = self.db.execute("SELECT * FROM documents WHERE reference = ?", (reference,)).fetchone()
        if row is None:
            return None
        key = self.db.execute("SELECT secret FROM keys WHERE kid = ?", (kid,)).fetchone()
        if key is None or not hmac.compare_digest(mac_hex(key["secret"], f"{reference}|{expires}"), mac.lower()):
            return None
        return row

    def api_shared(self, reference):
        row = self.shared_document(reference)
        if row is None:
            raise ApiError(403, "this share link is not valid or has expired")
        company = self.db.execute("SELECT brn, name, name_zh FROM companies WHERE id = ?", (row["company_id"],)).fetchone()
        out = document_full(row)
        out["company"] = {"brn": company["brn"], "name": company["name"], "name_zh": company["name_zh"]}
        self.send_json(200, out)

    def verify(self, content, signature):
        """What the public verification says of `signature` over `content`."""
        kid, _, mac = signature.strip().partition(".")
        key = self.db.execute(
            "SELECT k.secret, k.active, k.kid, c.id, c.brn, c.name, c.name_zh FROM keys k JOIN companies c ON c.id = k.company_id "
            "WHERE k.kid = ?",
            (kid,),
        ).fetchone()
        if key is None or not mac or not hmac.compare_digest(mac_hex(key["secret"], content), mac.lower()):
            return {"valid": False, "reason": "the signature does not match this content or names no known key"}
        out = {
            "valid": True,
            "company": {"brn": key["brn"], "name": key["name"], "name_zh": key["name_zh"]},
            "key": {"kid": key["kid"], "active": bool(key["active"])},
        }
        doc = self.db.execute(
            "SELECT * FROM documents WHERE company_id = ? AND signature = ? ORDER BY signed LIMIT 1",
            (key["id"], f"{kid}.{mac.lower()}"),
        ).fetchone()
        if doc is not None:
            out["document"] = {
                "reference": doc["reference"],
                "title": doc["title"],
                "signer_id": doc["signer_id"],
                "signer": doc["signer_name"],
                "signed_at": iso(doc["signed"]),
            }
        return out

    def api_verify(self):
        body = self.read_json()
        content = text_field(body, "content", MAX_DOCUMENT)
        signature = text_field(body, "signature", 200)
        self.send_json(200, self.verify(content, signature))

    # -- pages --------------------------------------------------------------------------

    def page_style(self):
        self.send_body(200, "text/css; charset=utf-8", PAGE_STYLE.encode("utf-8"), [("Cache-Control", "max-age=3600")])

    def page_home(self):
        t = self.t
        content = (
            f"<h1>{t('brand')}</h1><p>{t('intro')}</p><p class=\"muted\">{t('operator')}</p>"
            f"<h2>{t('licence_check')}</h2>"
            f"<form action=\"/licences/check\" method=\"get\" id=\"licence-form\">"
            f"<label>{t('licence_number')} <input name=\"number\" pattern=\"[A-Za-z]{{3}}-[0-9]{{6}}\" placeholder=\"RST-123456\"></label> "
            f"<input type=\"hidden\" name=\"lang\" value=\"{self.lang()}\"><button>{t('check')}</button></form>"
            f"<h2><a href=\"{self.href('/verify')}\">{t('verify')}</a></h2><p>{t('verify_help')}</p>"
            f"<p class=\"muted\">{t('api')}</p>"
        )
        self.send_page(200, "", content)

    def page_verify(self):
        t = self.t
        result = ""
        content_text = signature = ""
        if self.command == "POST":
            form = self.read_form()
            content_text = form.get("content", "")[:MAX_DOCUMENT].replace("\r\n", "\n")
            signature = form.get("signature", "")[:200]
            v = self.verify(content_text, signature)
            if v["valid"]:
                rows = [(t("signed_by"), f"{v['company']['name']} {v['company']['name_zh']} ({t('brn')} {v['company']['brn']})")]
                if "document" in v:
                    d = v["document"]
                    rows += [(t("reference"), d["reference"]), (t("title"), d["title"]), (t("signer"), d["signer"]), (t("signed_at"), d["signed_at"])]
                table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(val)}</td></tr>" for k, val in rows)
                result = f"<p class=\"ok\" role=\"status\">{t('valid')}</p><table>{table}</table>"
            else:
                result = f"<p class=\"bad\" role=\"status\">{t('invalid')}</p>"
        content = (
            f"<h1>{t('verify')}</h1><p>{t('verify_help')}</p>{result}"
            f"<form method=\"post\" action=\"{self.href('/verify')}\">"
            f"<p><label>{t('content')}<br><textarea name=\"content\">{html.escape(content_text)}</textarea></label></p>"
            f"<p><label>{t('signature')}<br><input name=\"signature\" size=\"80\" value=\"{html.escape(signature)}\"></label></p>"
            f"<button>{t('check')}</button></form>"
        )
        self.send_page(200, t("verify"), content)

    def licence_table(self, lic, full):
        t = self.t
        zh = self.lang() != "en"
        status = t("status_valid") if lic["status"] == "valid" else t("status_expired")
        holder = lic["holder"]
        rows = [
            (t("licence_number"), lic["number"]),
            (t("type"), lic["type_name_zh"] if zh else lic["type_name"]),
            (t("authority"), lic["authority_zh"] if zh else lic["authority"]),
            (t("holder"), f"{holder['name']} {holder['name_zh']} ({t('brn')} {holder['brn']})"),
            (t("premises"), lic["premises"]),
            (t("status"), status),
            (t("valid_from"), lic["issued"]),
            (t("valid_to"), lic["expires"]),
        ]
        if full:
            rows.append((t("conditions"), "\n".join(lic["conditions"])))
            rows.append((t("confidential"), lic["confidential_note"]))
        return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows) + "</table>"

    def page_licence(self, number):
        t = self.t
        row = self.licence_row(number)
        if row is None:
            self.send_page(404, t("licence"), f"<h1>{t('licence')} {html.escape(number)}</h1><p>{t('no_licence')}</p>")
            return
        self.send_page(200, number, f"<h1>{t('licence')} {html.escape(number)}</h1>" + self.licence_table(licence_public(row), False))

    def page_licence_lookup(self):
        number = self.query.get("number", "").strip().upper()
        if not re.fullmatch(r"[A-Z]{3}-[0-9]{6}", number):
            self.send_page(404, self.t("licence"), f"<p>{self.t('no_licence')}</p>")
            return
        self.redirect("/licences/" + number)

    def page_company(self, brn):
        t = self.t
        row = self.db.execute("SELECT id, brn, name, name_zh, created FROM companies WHERE brn = ?", (brn,)).fetchone()
        if row is None:
            self.send_page(404, t("company"), f"<p>{t('no_company')}</p>")
            return
        c = self.company_public(row)
        keys = "".join(f"<li><code>{html.escape(k['kid'])}</code> ({t('active') if k['active'] else t('retired')})</li>" for k in c["keys"])
        licences = "".join(
            f"<li><a href=\"{self.href('/licences/' + lic['number'])}\">{html.escape(lic['number'])}</a></li>" for lic in c["licences"]
        ) or f"<li>{t('none')}</li>"
        content = (
            f"<h1>{html.escape(c['name'])} <span lang=\"zh-HK\">{html.escape(c['name_zh'])}</span></h1>"
            f"<table><tr><th>{t('brn')}</th><td>{c['brn']}</td></tr><tr><th>{t('registered')}</th><td>{c['registered']}</td></tr>"
            f"<tr><th>{t('signers')}</th><td>{c['signers']}</td></tr></table>"
            f"<h2>{t('keys')}</h2><ul>{keys}</ul><h2>{t('licences')}</h2><ul>{licences}</ul>"
        )
        self.send_page(200, c["name"], content)

    def page_shared(self, reference):
        t = self.t
        row = self.shared_document(reference)
        if row is None:
            self.send_page(403, t("shared"), f"<h1>{t('shared')}</h1><p class=\"bad\">{t('shared_bad')}</p>")
            return
        company = self.db.execute("SELECT brn, name, name_zh FROM companies WHERE id = ?", (row["company_id"],)).fetchone()
        rows = [
            (t("reference"), row["reference"]),
            (t("signed_by"), f"{company['name']} {company['name_zh']} ({t('brn')} {company['brn']})"),
            (t("signer"), row["signer_name"]),
            (t("signed_at"), iso(row["signed"])),
            (t("signature"), row["signature"]),
        ]
        table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
        content = f"<h1>{html.escape(row['title'])}</h1><table>{table}</table><pre>{html.escape(row['body'])}</pre>"
        self.send_page(200, row["title"], content)

    def page_login(self):
        t = self.t
        error = ""
        if self.command == "POST":
            form = self.read_form()
            found = self.authenticate(form.get("user_id", "")[:16], form.get("password", "")[:128])
            if found is not None:
                self.start_session(*found)
                self.redirect("/account")
                return
            error = f"<p class=\"bad\" role=\"alert\">{t('login_failed')}</p>"
        content = (
            f"<h1>{t('login')}</h1>{error}<form method=\"post\" action=\"{self.href('/login')}\">"
            f"<p><label>{t('user_id')}<br><input name=\"user_id\" autocomplete=\"username\" required></label></p>"
            f"<p><label>{t('password')}<br><input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>"
            f"<button>{t('login')}</button></form>"
        )
        self.send_page(401 if error else 200, t("login"), content)

    def page_logout(self):
        form = self.read_form()
        token = self.session_token()
        if token and not hmac.compare_digest(form.get("csrf", ""), self.csrf_token(token)):
            raise ApiError(403, "the form has expired; reload the page")
        self.end_session()
        self.redirect("/")

    def page_account(self):
        t = self.t
        user = self.current_user()
        if user is None:
            self.redirect("/login")
            return
        me = self.me(user)
        role = t("role_admin") if me["role"] == "admin" else t("role_signer")
        who = html.escape(me["user_id"] + (" · " + me["name"] if me["role"] == "signer" else ""))
        licences = [licence_full(r) for r in self.db.execute(LICENCE_SELECT + "WHERE l.company_id = ? ORDER BY l.issued DESC LIMIT 20", (user["company_id"],))]
        where, args = "WHERE company_id = ? ", [user["company_id"]]
        if user["signer_id"] is not None:
            where += "AND signer_id = ? "
            args.append(user["signer_id"])
        docs = self.db.execute("SELECT * FROM documents " + where + "ORDER BY signed DESC LIMIT 20", args).fetchall()
        lic_html = "".join(self.licence_table(lic, True) for lic in licences) or f"<p>{t('none')}</p>"
        doc_rows = "".join(
            f"<tr><td>{html.escape(d['reference'])}</td><td>{html.escape(d['title'])}</td><td>{html.escape(d['signer_name'])}</td><td>{iso(d['signed'])}</td></tr>"
            for d in docs
        )
        doc_html = (
            f"<table><tr><th>{t('reference')}</th><th>{t('title')}</th><th>{t('signer')}</th><th>{t('signed_at')}</th></tr>{doc_rows}</table>"
            if docs
            else f"<p>{t('none')}</p>"
        )
        csrf = self.csrf_token(self.session_token())
        content = (
            f"<h1>{html.escape(user['name'])} <span lang=\"zh-HK\">{html.escape(user['name_zh'])}</span></h1>"
            f"<p>{role}: {who} · {t('brn')} <a href=\"{self.href('/companies/' + user['brn'])}\">{user['brn']}</a></p>"
            f"<form method=\"post\" action=\"{self.href('/logout')}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">"
            f"<button>{t('logout')}</button></form>"
            f"<h2>{t('licences')}</h2>{lic_html}<h2>{t('documents')}</h2>{doc_html}"
        )
        self.send_page(200, t("account"), content)


def cleaner(storage, every):
    while True:
        time.sleep(every)
        try:
            storage.cleanup()
        except Exception as e:  # a failed sweep is retried next time
            sys.stderr.write(f"cleanup failed: {e!r}\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description="TradeSeal Business Identity (商印通企業數碼身份)")
    parser.add_argument("--host", default=os.environ.get("BIZSIGN_HOST", "0.0.0.0"), help="address to listen on")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BIZSIGN_PORT", "8080")), help="port to listen on; 0 picks a free one")
    parser.add_argument("--data", default=os.environ.get("BIZSIGN_DATA", "/tmp/bizsign"), help="folder for the database")
    parser.add_argument(
        "--retention-minutes",
        type=float,
        default=float(os.environ.get("BIZSIGN_RETENTION_MINUTES", "60")),
        help="delete companies (and all they hold) older than this; keeps /tmp from filling up",
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
    Handler.csrf_key = secrets.token_bytes(32)
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
