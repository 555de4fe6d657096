#!/usr/bin/env python3
"""Open Data Portal (開放數據平台): government departments publish datasets for everyone.

Officers register, log in, publish datasets (CSV) as public or private drafts, keep private
department notes, and export datasets as JSON or TSV. Anyone can browse, search, preview and
download public datasets. A built-in data steward account reviews the drafts officers submit
for release, and approves (publishes) or rejects them.

Python 3 standard library only. Everything it writes lives under --data (default
/tmp/opendata), because the container's root filesystem is read-only:

    DATA/portal.db            users (the data steward too), sessions and datasets (SQLite)
    DATA/notes/USER.json      each user's private notes
    DATA/exports/NAME         exported datasets, downloadable for a while

Data older than --retention-minutes is deleted in the background so a long drill does not
fill the small /tmp.
"""

import argparse
import csv
import hashlib
import hmac
import html
import io
import json
import os
import re
import secrets
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

MAX_BODY = 512 * 1024
MAX_CSV = 256 * 1024
MAX_COLUMNS = 64
MAX_NOTE = 8 * 1024
MAX_NOTES_PER_USER = 200
EXPORT_MAX_AGE = 15 * 60
PBKDF2_ROUNDS = 20_000
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,31}$")
DATASET_PATH_RE = re.compile(r"^/api/datasets/([0-9]{1,12})(/preview|/download|/export|/review)?$")
PAGE_PATH_RE = re.compile(r"^/datasets/([0-9]{1,12})$")
REVIEW_PATH_RE = re.compile(r"^/api/review/([0-9]{1,12})$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    salt BLOB NOT NULL,
    pw_hash BLOB NOT NULL,
    department TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'officer' CHECK (role IN ('officer', 'steward')),
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id INTEGER NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    department TEXT NOT NULL,
    visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
    columns TEXT NOT NULL,
    rows INTEGER NOT NULL,
    content TEXT NOT NULL,
    review TEXT CHECK (review IN ('pending', 'approved', 'rejected')),
    review_comment TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS datasets_public ON datasets (visibility, id);
CREATE INDEX IF NOT EXISTS datasets_owner ON datasets (owner_id);
CREATE INDEX IF NOT EXISTS datasets_review ON datasets (review, id);
"""

# The built-in data steward of the Digital Policy Office: reviews every department's drafts
# before release. The installer sets its password through OPENDATA_STEWARD_PASSWORD; without
# it, the portal starts with the initial password from the installation guide.
STEWARD = "steward"
STEWARD_DEPARTMENT = "數字政策辦公室 Digital Policy Office"
DEFAULT_STEWARD_PASSWORD = "Steward@2024"


class ApiError(Exception):
    """An error answered to the client as JSON: {"error": message} with an HTTP status."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Storage:
    """The data folder: the SQLite database, the notes files and the exports."""

    def __init__(self, root, retention, steward_password):
        self.root = os.path.abspath(root)
        self.db_path = os.path.join(self.root, "portal.db")
        self.notes_dir = os.path.join(self.root, "notes")
        self.exports_dir = os.path.join(self.root, "exports")
        self.retention = retention
        self.steward_password = steward_password
        self.notes_lock = threading.Lock()
        self.schema_lock = threading.Lock()

    def ensure(self):
        """Creates the folders and tables when missing (first start, or after a wipe)."""
        os.makedirs(self.notes_dir, exist_ok=True)
        os.makedirs(self.exports_dir, exist_ok=True)

    def connect(self):
        self.ensure()
        # Under the lock, so no request sees a database file whose tables are not made yet.
        with self.schema_lock:
            fresh = not os.path.exists(self.db_path)
            conn = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
            conn.row_factory = sqlite3.Row
            if fresh:
                self.set_up(conn)
        return conn

    def init(self):
        conn = self.connect()
        try:
            self.set_up(conn)
        finally:
            conn.close()

    def set_up(self, conn):
        """Makes the tables, and the built-in data steward's account when there is none."""
        conn.executescript(SCHEMA)
        salt = secrets.token_bytes(16)
        if conn.execute("SELECT 1 FROM users WHERE username = ?", (STEWARD,)).fetchone() is None:
            conn.execute(
                "INSERT INTO users (username, salt, pw_hash, department, role, created) VALUES (?, ?, ?, ?, 'steward', ?)",
                (STEWARD, salt, hash_password(self.steward_password, salt), STEWARD_DEPARTMENT, time.time()),
            )

    def notes_path(self, username):
        return os.path.join(self.notes_dir, username + ".json")

    def read_notes(self, username):
        try:
            with open(self.notes_path(username), encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return []

    def write_notes(self, username, notes):
        self.ensure()
        path = self.notes_path(username)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(notes, f, ensure_ascii=False)
        os.replace(tmp, path)

    def cleanup(self, now=None):
        """Deletes officers (with their sessions, datasets and notes), old sessions and exports
        past retention. The data steward's account stays."""
        now = time.time() if now is None else now
        conn = self.connect()
        try:
            cutoff = now - self.retention
            old_users = "SELECT id FROM users WHERE created < ? AND role = 'officer'"
            old = [r["username"] for r in conn.execute("SELECT username FROM users WHERE id IN (" + old_users + ")", (cutoff,))]
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM datasets WHERE created < ? OR owner_id IN (" + old_users + ")", (cutoff, cutoff))
            conn.execute("DELETE FROM sessions WHERE created < ? OR user_id IN (" + old_users + ")", (cutoff, cutoff))
            conn.execute("DELETE FROM users WHERE id IN (" + old_users + ")", (cutoff,))
            conn.execute("COMMIT")
        finally:
            conn.close()
        with self.notes_lock:
            for username in old:
                try:
                    os.remove(self.notes_path(username))
                except FileNotFoundError:
                    pass
        for name in os.listdir(self.exports_dir):
            path = os.path.join(self.exports_dir, name)
            try:
                if os.path.getmtime(path) < now - min(EXPORT_MAX_AGE, self.retention):
                    os.remove(path)
            except FileNotFoundError:
                pass


def hash_password(password, salt):
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, PBKDF2_ROUNDS)


def parse_csv(text):
    """Checks CSV content: a header and at least one row, no more than MAX_COLUMNS columns."""
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:
        raise ApiError(400, f"csv is not valid CSV: {e}")
    rows = [r for r in rows if r]
    if len(rows) < 2:
        raise ApiError(400, "csv needs a header line and at least one data line")
    header = rows[0]
    if len(header) > MAX_COLUMNS:
        raise ApiError(400, f"csv has {len(header)} columns; at most {MAX_COLUMNS} are allowed")
    if any(not h.strip() for h in header):
        raise ApiError(400, "csv header has an empty column name")
    return header, rows[1:]


def text_field(body, name, max_len, required=True, default=""):
    value = body.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    value = value.strip() if name != "csv" else value
    if required and not value:
        raise ApiError(400, f"{name} is required")
    if len(value) > max_len:
        raise ApiError(400, f"{name} is longer than {max_len} characters")
    return value


def dataset_meta(row):
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "department": row["department"],
        "visibility": row["visibility"],
        "owner": row["owner"],
        "columns": json.loads(row["columns"]),
        "rows": row["rows"],
        "review": row["review"],
        "review_comment": row["review_comment"],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row["created"])),
    }


DATASET_SELECT = (
    "SELECT d.id, d.title, d.description, d.department, d.visibility, d.columns, d.rows, d.content, "
    "d.review, d.review_comment, d.created, d.owner_id, u.username AS owner FROM datasets d JOIN users u ON u.id = d.owner_id "
)

PAGE_STYLE = """
body { font-family: system-ui, "Noto Sans TC", sans-serif; margin: 0; color: #1d2733; background: #f4f6f8; }
header { background: #0b4f6c; color: white; padding: 1em 2em; }
header a { color: white; text-decoration: none; }
main { padding: 1em 2em; max-width: 60em; }
table { border-collapse: collapse; background: white; }
td, th { border: 1px solid #c8d1da; padding: .3em .6em; text-align: left; }
.dept { color: #5a6b7b; font-size: .9em; }
"""

# Page labels in English and in Traditional Chinese (Hong Kong), shown side by side.
LABELS = {
    "datasets": ("Datasets", "數據集"),
    "search": ("Search", "搜尋"),
    "search_placeholder": ("Search datasets", "搜尋數據集"),
    "title": ("Title", "標題"),
    "department": ("Department", "部門"),
    "rows": ("Rows", "行數"),
    "none": ("No datasets found.", "找不到數據集。"),
    "published_by": ("published by", "發布者："),
    "download": ("Download CSV", "下載 CSV"),
}


def label(key):
    en, zh = LABELS[key]
    return f"{html.escape(en)} <span lang=\"zh-HK\">{html.escape(zh)}</span>"



class Handler(BaseHTTPRequestHandler):
    server_version = "OpenDataPortal/1.4"
    timeout = 15
    storage: Storage = None

    # -- plumbing -----------------------------------------------------------------------

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        url = urlsplit(self.path)
        self.route = url.path
        self.query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        self.extra_headers = []
        self.db = None
        try:
            self.db = self.storage.connect()
            handler = self.find_route(method, url.path)
            handler()
        except ApiError as e:
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
            ("GET", "/api/me"): self.api_me,
            ("POST", "/api/register"): self.api_register,
            ("POST", "/api/login"): self.api_login,
            ("POST", "/api/logout"): self.api_logout,
            ("POST", "/api/password"): self.api_change_password,
            ("GET", "/api/departments"): self.api_departments,
            ("GET", "/api/datasets"): self.api_list_datasets,
            ("POST", "/api/datasets"): self.api_publish,
            ("GET", "/api/my/datasets"): self.api_my_datasets,
            ("GET", "/api/search"): self.api_search,
            ("GET", "/api/notes"): self.api_list_notes,
            ("POST", "/api/notes"): self.api_add_note,
            ("GET", "/api/exports"): self.api_export_download,
            ("GET", "/api/review"): self.api_review_queue,
        }
        if (method, path) in routes:
            return routes[(method, path)]
        m = DATASET_PATH_RE.match(path)
        if m:
            dataset_id, sub = int(m.group(1)), m.group(2) or ""
            by_sub = {
                ("GET", ""): self.api_dataset,
                ("DELETE", ""): self.api_delete_dataset,
                ("GET", "/preview"): self.api_preview,
                ("GET", "/download"): self.api_download,
                ("POST", "/export"): self.api_export,
                ("POST", "/review"): self.api_request_review,
            }
            if (method, sub) in by_sub:
                return lambda: by_sub[(method, sub)](dataset_id)
        review = REVIEW_PATH_RE.match(path)
        if review and method == "POST":
            return lambda: self.api_review_decide(int(review.group(1)))
        page = PAGE_PATH_RE.match(path)
        if page and method == "GET":
            return lambda: self.page_dataset(int(page.group(1)))
        if any(p == path for (_, p) in routes) or m or review or page:
            raise ApiError(405, f"{method} is not allowed on {path}")
        raise ApiError(404, f"no such page: {path}")

    def read_json(self):
        length = self.headers.get("Content-Length")
        if length is None:
            raise ApiError(411, "send a Content-Length header with the JSON body")
        try:
            length = int(length)
        except ValueError:
            raise ApiError(400, "Content-Length is not a number")
        if length < 0 or length > MAX_BODY:
            raise ApiError(413, f"the body is larger than {MAX_BODY} bytes")
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ApiError(400, f"the body is not JSON: {e}")
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body

    def send_body(self, status, content_type, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in list(headers) + self.extra_headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj):
        self.send_body(status, "application/json; charset=utf-8", json.dumps(obj).encode("utf-8"))

    def send_html(self, status, title, content):
        page = (
            f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)} · Open Data Portal</title>"
            f"<style>{PAGE_STYLE}</style></head><body><header><a href=\"/\"><strong>Open Data Portal</strong> 開放數據平台</a></header>"
            f"<main>{content}</main></body></html>"
        )
        self.send_body(status, "text/html; charset=utf-8", page.encode("utf-8"))

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s %s\n" % (time.strftime("%H:%M:%S"), self.client_address[0], fmt % args))

    # -- sessions -----------------------------------------------------------------------

    def session_token(self):
        cookie = self.headers.get("Cookie", "")
        for part in cookie.split(";"):
            name, _, value = part.strip().partition("=")
            if name == "session" and value:
                return value
        return None

    def current_user(self):
        token = self.session_token()
        if token is None:
            return None
        return self.db.execute(
            "SELECT u.id, u.username, u.department, u.role FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token = ?",
            (token,),
        ).fetchone()

    def require_user(self):
        user = self.current_user()
        if user is None:
            raise ApiError(401, "log in first")
        return user

    def require_steward(self):
        user = self.require_user()
        if user["role"] != "steward":
            raise ApiError(403, "only the data steward reviews drafts")
        return user

    def visible_dataset(self, dataset_id, user):
        """The dataset if it is public, belongs to `user` or `user` is the data steward (who
        reviews every department's drafts); 404 otherwise."""
        row = self.db.execute(DATASET_SELECT + "WHERE d.id = ?", (dataset_id,)).fetchone()
        allowed = row is not None and (
            row["visibility"] == "public" or (user is not None and (user["id"] == row["owner_id"] or user["role"] == "steward"))
        )
        if not allowed:
            raise ApiError(404, f"no dataset {dataset_id}")
        return row

    # -- accounts -----------------------------------------------------------------------

    def api_register(self):
        body = self.read_json()
        username = text_field(body, "username", 32).lower()
        password = text_field(body, "password", 128)
        department = text_field(body, "department", 80)
        if not USERNAME_RE.match(username):
            raise ApiError(400, "username must be 3-32 characters: a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
        if len(password) < 8:
            raise ApiError(400, "password must be at least 8 characters")
        salt = secrets.token_bytes(16)
        try:
            self.db.execute(
                "INSERT INTO users (username, salt, pw_hash, department, created) VALUES (?, ?, ?, ?, ?)",
                (username, salt, hash_password(password, salt), department, time.time()),
            )
        except sqlite3.IntegrityError:
            raise ApiError(409, f"the username {username} is taken")
        self.send_json(201, {"username": username, "department": department})

    def api_login(self):
        body = self.read_json()
        username = text_field(body, "username", 32).lower()
        password = text_field(body, "password", 128)
        row = self.db.execute("SELECT id, salt, pw_hash FROM users WHERE username = ?", (username,)).fetchone()
        if row is None or not hmac.compare_digest(hash_password(password, row["salt"]), row["pw_hash"]):
            raise ApiError(401, "wrong username or password")
        token = secrets.token_hex(24)
        self.db.execute("INSERT INTO sessions (token, user_id, created) VALUES (?, ?, ?)", (token, row["id"], time.time()))
        self.extra_headers.append(("Set-Cookie", f"session={token}; Path=/; HttpOnly; SameSite=Lax"))
        self.send_json(200, {"username": username})

    def api_logout(self):
        user = self.current_user()
        if user is not None:
            self.db.execute("DELETE FROM sessions WHERE token = ?", (self.session_token(),))
        self.extra_headers.append(("Set-Cookie", "session=; Path=/; Max-Age=0"))
        self.send_json(200, {"logged_out": user is not None})

    def api_change_password(self):
        user = self.require_user()
        body = self.read_json()
        current = text_field(body, "password", 128)
        new = text_field(body, "new_password", 128)
        row = self.db.execute("SELECT salt, pw_hash FROM users WHERE id = ?", (user["id"],)).fetchone()
        if not hmac.compare_digest(hash_password(current, row["salt"]), row["pw_hash"]):
            raise ApiError(403, "the current password is wrong")
        if len(new) < 8:
            raise ApiError(400, "password must be at least 8 characters")
        salt = secrets.token_bytes(16)
        self.db.execute("UPDATE users SET salt = ?, pw_hash = ? WHERE id = ?", (salt, hash_password(new, salt), user["id"]))
        # Whoever knew the old password is logged out everywhere but here.
        self.db.execute("DELETE FROM sessions WHERE user_id = ? AND token != ?", (user["id"], self.session_token()))
        self.send_json(200, {"username": user["username"], "changed": True})

    def api_me(self):
        user = self.require_user()
        count = self.db.execute("SELECT COUNT(*) FROM datasets WHERE owner_id = ?", (user["id"],)).fetchone()[0]
        self.send_json(
            200, {"username": user["username"], "department": user["department"], "role": user["role"], "datasets": count}
        )

    # -- datasets -----------------------------------------------------------------------

    def paging(self):
        try:
            limit = min(max(int(self.query.get("limit", "50")), 1), 200)
            offset = max(int(self.query.get("offset", "0")), 0)
        except ValueError:
            raise ApiError(400, "limit and offset must be numbers")
        return limit, offset

    def api_publish(self):
        user = self.require_user()
        body = self.read_json()
        title = text_field(body, "title", 200)
        description = text_field(body, "description", 2000, required=False)
        department = text_field(body, "department", 80, required=False) or user["department"]
        visibility = text_field(body, "visibility", 10, required=False, default="public")
        if visibility not in ("public", "private"):
            raise ApiError(400, "visibility must be public or private")
        content = text_field(body, "csv", MAX_CSV)
        header, rows = parse_csv(content)
        cur = self.db.execute(
            "INSERT INTO datasets (owner_id, title, description, department, visibility, columns, rows, content, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (user["id"], title, description, department, visibility, json.dumps(header), len(rows), content, time.time()),
        )
        row = self.db.execute(DATASET_SELECT + "WHERE d.id = ?", (cur.lastrowid,)).fetchone()
        self.send_json(201, dataset_meta(row))

    def api_list_datasets(self):
        limit, offset = self.paging()
        department = self.query.get("department", "")
        where, args = "WHERE d.visibility = 'public' ", []
        if department:
            where += "AND d.department = ? "
            args.append(department)
        total = self.db.execute("SELECT COUNT(*) FROM datasets d " + where, args).fetchone()[0]
        rows = self.db.execute(DATASET_SELECT + where + "ORDER BY d.id DESC LIMIT ? OFFSET ?", args + [limit, offset])
        self.send_json(200, {"total": total, "datasets": [dataset_meta(r) for r in rows]})

    def api_my_datasets(self):
        user = self.require_user()
        rows = self.db.execute(DATASET_SELECT + "WHERE d.owner_id = ? ORDER BY d.id DESC", (user["id"],))
        self.send_json(200, {"datasets": [dataset_meta(r) for r in rows]})

    def search(self, q, department, limit, offset):
        where, args = "WHERE d.visibility = 'public' ", []
        for word in q.split()[:8]:
            pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where += "AND (d.title LIKE ? ESCAPE '\\' OR d.description LIKE ? ESCAPE '\\' OR d.department LIKE ? ESCAPE '\\') "
            args += [pattern, pattern, pattern]
        if department:
            where += "AND d.department = ? "
            args.append(department)
        return self.db.execute(DATASET_SELECT + where + "ORDER BY d.id DESC LIMIT ? OFFSET ?", args + [limit, offset]).fetchall()

    def api_search(self):
        q = self.query.get("q", "")
        if len(q) > 200:
            raise ApiError(400, "the search is longer than 200 characters")
        limit, offset = self.paging()
        rows = self.search(q, self.query.get("department", ""), limit, offset)
        self.send_json(200, {"query": q, "datasets": [dataset_meta(r) for r in rows]})

    def api_departments(self):
        rows = self.db.execute(
            "SELECT department, COUNT(*) AS n FROM datasets WHERE visibility = 'public' GROUP BY department ORDER BY n DESC, department"
        )
        self.send_json(200, {"departments": [{"name": r["department"], "datasets": r["n"]} for r in rows]})

    def api_dataset(self, dataset_id):
        row = self.visible_dataset(dataset_id, self.current_user())
        self.send_json(200, dataset_meta(row))

    def api_delete_dataset(self, dataset_id):
        user = self.require_user()
        row = self.visible_dataset(dataset_id, user)
        if row["owner_id"] != user["id"]:
            raise ApiError(403, "only the publisher can delete a dataset")
        self.db.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
        self.send_json(200, {"deleted": dataset_id})

    def api_preview(self, dataset_id):
        row = self.visible_dataset(dataset_id, self.current_user())
        header, rows = parse_csv(row["content"])
        self.send_json(200, {"id": dataset_id, "columns": header, "rows": rows[:10], "total_rows": len(rows)})

    def api_download(self, dataset_id):
        row = self.db.execute(DATASET_SELECT + "WHERE d.id = ?", (dataset_id,)).fetchone()
        if row is None:
            raise ApiError(404, f"no dataset {dataset_id}")
        filename = f"dataset-{dataset_id}.csv"
        self.send_body(
            200,
            "text/csv; charset=utf-8",
            row["content"].encode("utf-8"),
            [("Content-Disposition", f"attachment; filename=\"{filename}\"")],
        )

    def api_export(self, dataset_id):
        user = self.require_user()
        row = self.visible_dataset(dataset_id, user)
        body = self.read_json()
        fmt = text_field(body, "format", 8, required=False, default="json")
        header, rows = parse_csv(row["content"])
        if fmt == "json":
            data = json.dumps([dict(zip(header, r)) for r in rows], ensure_ascii=False, indent=1)
        elif fmt == "tsv":
            out = io.StringIO()
            writer = csv.writer(out, delimiter="\t", lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
            data = out.getvalue()
        else:
            raise ApiError(400, "format must be json or tsv")
        name = f"{secrets.token_hex(16)}.{fmt}"
        self.storage.ensure()
        with open(os.path.join(self.storage.exports_dir, name), "w", encoding="utf-8") as f:
            f.write(data)
        self.send_json(201, {"file": name, "url": "/api/exports?file=" + quote(name), "rows": len(rows)})

    def api_export_download(self):
        self.require_user()
        name = self.query.get("file", "")
        if not name:
            raise ApiError(400, "say which export to download: ?file=NAME")
        path = os.path.join(self.storage.exports_dir, name)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_BODY * 8)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ApiError(404, f"no export {name}; exports are kept for {EXPORT_MAX_AGE // 60} minutes")
        except OSError:
            raise ApiError(404, f"cannot read export {name}")
        ctype = "application/json; charset=utf-8" if name.endswith(".json") else "text/tab-separated-values; charset=utf-8"
        self.send_body(200, ctype, data, [("Content-Disposition", "attachment")])

    # -- release review -----------------------------------------------------------------

    def api_request_review(self, dataset_id):
        user = self.require_user()
        row = self.visible_dataset(dataset_id, user)
        if row["owner_id"] != user["id"]:
            raise ApiError(403, "only the publisher can submit a dataset for review")
        if row["visibility"] == "public":
            raise ApiError(409, f"dataset {dataset_id} is public already")
        stewards = [r["username"] for r in self.db.execute("SELECT username FROM users WHERE role = 'steward' ORDER BY id")]
        if not stewards:
            raise ApiError(503, "no data steward can review drafts at the moment")
        self.db.execute("UPDATE datasets SET review = 'pending', review_comment = '' WHERE id = ?", (dataset_id,))
        self.send_json(200, {"id": dataset_id, "review": "pending", "reviewers": stewards})

    def api_review_queue(self):
        self.require_steward()
        limit, offset = self.paging()
        where = "WHERE d.review = 'pending' "
        total = self.db.execute("SELECT COUNT(*) FROM datasets d " + where).fetchone()[0]
        rows = self.db.execute(DATASET_SELECT + where + "ORDER BY d.id LIMIT ? OFFSET ?", (limit, offset))
        self.send_json(200, {"total": total, "datasets": [dataset_meta(r) for r in rows]})

    def api_review_decide(self, dataset_id):
        steward = self.require_steward()
        row = self.visible_dataset(dataset_id, steward)
        body = self.read_json()
        decision = text_field(body, "decision", 10)
        comment = text_field(body, "comment", 500, required=False)
        if row["review"] != "pending":
            raise ApiError(409, f"dataset {dataset_id} is not waiting for review")
        if decision == "approve":
            self.db.execute(
                "UPDATE datasets SET visibility = 'public', review = 'approved', review_comment = ? WHERE id = ?", (comment, dataset_id)
            )
        elif decision == "reject":
            self.db.execute("UPDATE datasets SET review = 'rejected', review_comment = ? WHERE id = ?", (comment, dataset_id))
        else:
            raise ApiError(400, "decision must be approve or reject")
        row = self.db.execute(DATASET_SELECT + "WHERE d.id = ?", (dataset_id,)).fetchone()
        self.send_json(200, dataset_meta(row))

    # -- notes --------------------------------------------------------------------------

    def api_list_notes(self):
        user = self.require_user()
        with self.storage.notes_lock:
            notes = self.storage.read_notes(user["username"])
        self.send_json(200, {"notes": notes})

    def api_add_note(self):
        user = self.require_user()
        body = self.read_json()
        title = text_field(body, "title", 200)
        text = text_field(body, "body", MAX_NOTE)
        with self.storage.notes_lock:
            notes = self.storage.read_notes(user["username"])
            if len(notes) >= MAX_NOTES_PER_USER:
                raise ApiError(409, f"you have {MAX_NOTES_PER_USER} notes already; that is the most one user may keep")
            note = {
                "id": max((n["id"] for n in notes), default=0) + 1,
                "title": title,
                "body": text,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            notes.append(note)
            self.storage.write_notes(user["username"], notes)
        self.send_json(201, note)

    # -- pages --------------------------------------------------------------------------

    def page_home(self):
        q = self.query.get("q", "")[:200]
        rows = self.search(q, "", 30, 0)
        items = "".join(
            f"<tr><td><a href=\"/datasets/{r['id']}\">{html.escape(r['title'])}</a></td>"
            f"<td class=\"dept\">{html.escape(r['department'])}</td><td>{r['rows']}</td></tr>"
            for r in rows
        )
        placeholder = " ".join(LABELS["search_placeholder"])
        content = (
            f"<h1>{label('datasets')}</h1>"
            f"<form action=\"/\" method=\"get\"><input name=\"q\" value=\"{html.escape(q)}\" placeholder=\"{placeholder}\" "
            f"aria-label=\"{placeholder}\"> <button>{label('search')}</button></form>"
            f"<table><tr><th>{label('title')}</th><th>{label('department')}</th><th>{label('rows')}</th></tr>{items}</table>"
            + ("" if rows else f"<p>{label('none')}</p>")
        )
        self.send_html(200, "Datasets", content)

    def page_dataset(self, dataset_id):
        row = self.visible_dataset(dataset_id, self.current_user())
        header, rows = parse_csv(row["content"])
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[:10])
        content = (
            f"<h1>{html.escape(row['title'])}</h1><p class=\"dept\">{html.escape(row['department'])} · "
            f"{label('published_by')} {html.escape(row['owner'])}</p><p>{html.escape(row['description'])}</p>"
            f"<table><tr>{head}</tr>{body}</table>"
            f"<p>{label('rows')}: {len(rows)} · <a href=\"/api/datasets/{dataset_id}/download\">{label('download')}</a></p>"
        )
        self.send_html(200, row["title"], content)


def cleaner(storage, every):
    while True:
        time.sleep(every)
        try:
            storage.cleanup()
        except Exception as e:  # a failed sweep is retried next time
            sys.stderr.write(f"cleanup failed: {e!r}\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Open Data Portal (開放數據平台)")
    parser.add_argument("--host", default=os.environ.get("OPENDATA_HOST", "0.0.0.0"), help="address to listen on")
    parser.add_argument("--port", type=int, default=int(os.environ.get("OPENDATA_PORT", "8080")), help="port to listen on; 0 picks a free one")
    parser.add_argument("--data", default=os.environ.get("OPENDATA_DATA", "/tmp/opendata"), help="folder for the database, notes and exports")
    parser.add_argument(
        "--retention-minutes",
        type=float,
        default=float(os.environ.get("OPENDATA_RETENTION_MINUTES", "60")),
        help="delete users, datasets and notes older than this (keeps /tmp from filling up)",
    )
    args = parser.parse_args(argv)
    if args.retention_minutes <= 0:
        parser.error("--retention-minutes must be positive")

    steward_password = os.environ.get("OPENDATA_STEWARD_PASSWORD") or DEFAULT_STEWARD_PASSWORD
    storage = Storage(args.data, args.retention_minutes * 60, steward_password)
    try:
        storage.init()
    except OSError as e:
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
