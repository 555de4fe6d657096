//! A client of the Open Data Portal's JSON API, as one browser session: each call checks the
//! status and the shape of the answer and says, in a short English / Chinese message the team
//! sees, which feature broke; what came back goes to the organisers' log.

use gongfang_checker_sdk::http::{Http, Response};
use gongfang_checker_sdk::{Ctx, Failure, Outcome};
use serde_json::{Value, json};

use crate::data::{Account, Dataset};

/// A dataset's public description, as the listing, search and metadata calls return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub id: u64,
    pub title: String,
    pub department: String,
    pub visibility: String,
    pub owner: String,
    pub rows: u64,
    pub columns: Vec<String>,
    /// Where the dataset is in the release review: `pending`, `approved`, `rejected` or none.
    pub review: Option<String>,
}

/// The first rows of a dataset.
#[derive(Debug, Clone)]
pub struct Preview {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub total_rows: u64,
}

/// A note as the notes list returns it.
#[derive(Debug, Clone)]
pub struct Note {
    pub title: String,
    pub body: String,
}

/// Whether the portal let a user in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    In,
    /// The portal answered 401: no such user, or a wrong password.
    Rejected,
}

/// One user's (or an anonymous visitor's) session with the portal.
pub struct Portal {
    http: Http,
}

/// The public messages of the features: what the team sees when one breaks.
pub mod failed {
    pub const REGISTER: &str = "Registration does not work / 無法註冊";
    pub const LOGIN: &str = "Login does not work / 無法登入";
    pub const LOGOUT: &str = "Logout does not work / 無法登出";
    pub const ACCOUNT: &str = "Account page does not work / 帳戶頁面無法使用";
    pub const PASSWORD: &str = "Password change does not work / 無法更改密碼";
    pub const PUBLISH: &str = "Publishing does not work / 無法發布數據集";
    pub const LIST: &str = "Dataset list does not work / 數據集列表無法使用";
    pub const MINE: &str = "Own dataset list does not work / 我的數據集列表無法使用";
    pub const SEARCH: &str = "Search does not work / 搜尋功能無法使用";
    pub const DATASET: &str = "Dataset page does not work / 數據集頁面無法使用";
    pub const PREVIEW: &str = "Preview does not work / 預覽功能無法使用";
    pub const DOWNLOAD: &str = "Download does not work / 下載功能無法使用";
    pub const EXPORT: &str = "Export does not work / 匯出功能無法使用";
    pub const REVIEW: &str = "Review request does not work / 無法提交審閱";
    pub const NOTE: &str = "Saving notes does not work / 無法儲存筆記";
    pub const NOTES: &str = "Notes page does not work / 筆記頁面無法使用";
    pub const HOME: &str = "Home page does not work / 主頁無法使用";
}

fn wrong(feature: &str, what: impl Into<String>) -> Failure {
    Failure::mumble(feature).with_private(what.into())
}

/// The answer as JSON; not JSON is `feature` failing.
fn json_of(response: &Response, feature: &str) -> Outcome<Value> {
    response.json().map_err(|f| f.context(feature))
}

/// The answer as text; not UTF-8 is `feature` failing.
fn text_of<'a>(response: &'a Response, feature: &str) -> Outcome<&'a str> {
    response.text().map_err(|f| f.context(feature))
}

fn str_field(v: &Value, key: &str, feature: &str) -> Outcome<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| wrong(feature, format!("no string {key:?} in {}", short(v))))
}

fn u64_field(v: &Value, key: &str, feature: &str) -> Outcome<u64> {
    v.get(key).and_then(Value::as_u64).ok_or_else(|| wrong(feature, format!("no number {key:?} in {}", short(v))))
}

fn strings(v: &Value, feature: &str) -> Outcome<Vec<String>> {
    v.as_array()
        .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
        .ok_or_else(|| wrong(feature, format!("not a list of strings: {}", short(v))))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 { format!("{}…", &s[..s.floor_char_boundary(300)]) } else { s }
}

fn meta(v: &Value, feature: &str) -> Outcome<Meta> {
    Ok(Meta {
        id: u64_field(v, "id", feature)?,
        title: str_field(v, "title", feature)?,
        department: str_field(v, "department", feature)?,
        visibility: str_field(v, "visibility", feature)?,
        owner: str_field(v, "owner", feature)?,
        rows: u64_field(v, "rows", feature)?,
        columns: strings(v.get("columns").unwrap_or(&Value::Null), feature)?,
        review: v.get("review").and_then(Value::as_str).map(str::to_owned),
    })
}

fn metas(v: &Value, feature: &str) -> Outcome<Vec<Meta>> {
    let list = v
        .get("datasets")
        .and_then(Value::as_array)
        .ok_or_else(|| wrong(feature, format!("no \"datasets\" list in {}", short(v))))?;
    list.iter().map(|d| meta(d, feature)).collect()
}

/// Percent-encodes a query-string value.
pub fn query_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Portal {
    /// A fresh session (no cookies) with the target's portal.
    pub fn new(ctx: &Ctx) -> Portal {
        Portal { http: Http::new(ctx, ctx.port()) }
    }

    fn expect(&self, response: Response, status: u16, feature: &str) -> Outcome<Response> {
        response.expect_status(status).map_err(|f| f.context(feature))
    }

    fn expect_json(&self, response: Response, status: u16, feature: &str) -> Outcome<Value> {
        json_of(&self.expect(response, status, feature)?, feature)
    }

    /// Registers `account`; false when the user name is taken.
    pub fn register(&mut self, account: &Account) -> Outcome<bool> {
        const FEATURE: &str = failed::REGISTER;
        let body =
            json!({"username": account.username, "password": account.password, "department": account.department});
        let response = self.http.post_json("/api/register", &body)?;
        if response.status == 409 {
            return Ok(false);
        }
        let v = self.expect_json(response, 201, FEATURE)?;
        let got = str_field(&v, "username", FEATURE)?;
        if got != account.username {
            return Err(wrong(FEATURE, format!("registered {:?}, the portal says {got:?}", account.username)));
        }
        Ok(true)
    }

    /// Logs in; the session cookie is kept for later calls.
    pub fn login(&mut self, username: &str, password: &str) -> Outcome<Login> {
        const FEATURE: &str = failed::LOGIN;
        let response = self.http.post_json("/api/login", &json!({"username": username, "password": password}))?;
        if response.status == 401 {
            return Ok(Login::Rejected);
        }
        self.expect(response, 200, FEATURE)?;
        if self.http.cookie("session").is_none() {
            return Err(wrong(FEATURE, "login answered 200 but set no session cookie"));
        }
        Ok(Login::In)
    }

    /// Logs out.
    pub fn logout(&mut self) -> Outcome<()> {
        let response = self.http.post_json("/api/logout", &json!({}))?;
        self.expect(response, 200, failed::LOGOUT)?;
        Ok(())
    }

    /// Changes the logged-in user's password.
    pub fn change_password(&mut self, current: &str, new: &str) -> Outcome<()> {
        let body = json!({"password": current, "new_password": new});
        let response = self.http.post_json("/api/password", &body)?;
        self.expect(response, 200, failed::PASSWORD)?;
        Ok(())
    }

    /// The logged-in user's (user name, department); `None` when not logged in (401).
    pub fn me(&mut self) -> Outcome<Option<(String, String)>> {
        const FEATURE: &str = failed::ACCOUNT;
        let response = self.http.get("/api/me")?;
        if response.status == 401 {
            return Ok(None);
        }
        let v = self.expect_json(response, 200, FEATURE)?;
        Ok(Some((str_field(&v, "username", FEATURE)?, str_field(&v, "department", FEATURE)?)))
    }

    /// Publishes `dataset`; the portal's description of it.
    pub fn publish(&mut self, dataset: &Dataset) -> Outcome<Meta> {
        const FEATURE: &str = failed::PUBLISH;
        let body = json!({
            "title": dataset.title,
            "description": dataset.description,
            "department": dataset.department,
            "visibility": if dataset.public { "public" } else { "private" },
            "csv": dataset.csv(),
        });
        let response = self.http.post_json("/api/datasets", &body)?;
        let got = meta(&self.expect_json(response, 201, FEATURE)?, FEATURE)?;
        let want_visibility = if dataset.public { "public" } else { "private" };
        if got.title != dataset.title
            || got.visibility != want_visibility
            || got.rows != dataset.rows.len() as u64
            || got.columns != dataset.header
        {
            return Err(wrong(
                FEATURE,
                format!(
                    "published {:?} ({want_visibility}, {} rows), got back {got:?}",
                    dataset.title,
                    dataset.rows.len()
                ),
            ));
        }
        Ok(got)
    }

    /// The newest public datasets, optionally of one department.
    pub fn list(&mut self, department: Option<&str>) -> Outcome<Vec<Meta>> {
        const FEATURE: &str = failed::LIST;
        let path = match department {
            Some(d) => format!("/api/datasets?department={}&limit=100", query_encode(d)),
            None => "/api/datasets?limit=100".to_owned(),
        };
        let response = self.http.get(&path)?;
        metas(&self.expect_json(response, 200, FEATURE)?, FEATURE)
    }

    /// The logged-in user's own datasets, private ones included.
    pub fn mine(&mut self) -> Outcome<Vec<Meta>> {
        const FEATURE: &str = failed::MINE;
        let response = self.http.get("/api/my/datasets")?;
        metas(&self.expect_json(response, 200, FEATURE)?, FEATURE)
    }

    /// Public datasets matching `query`.
    pub fn search(&mut self, query: &str) -> Outcome<Vec<Meta>> {
        const FEATURE: &str = failed::SEARCH;
        let response = self.http.get(&format!("/api/search?q={}", query_encode(query)))?;
        metas(&self.expect_json(response, 200, FEATURE)?, FEATURE)
    }

    /// A dataset's description; `None` when the portal says there is no such dataset (404).
    pub fn dataset(&mut self, id: u64) -> Outcome<Option<Meta>> {
        const FEATURE: &str = failed::DATASET;
        let response = self.http.get(&format!("/api/datasets/{id}"))?;
        if response.status == 404 {
            return Ok(None);
        }
        Ok(Some(meta(&self.expect_json(response, 200, FEATURE)?, FEATURE)?))
    }

    /// A dataset's first rows; `None` on 404.
    pub fn preview(&mut self, id: u64) -> Outcome<Option<Preview>> {
        const FEATURE: &str = failed::PREVIEW;
        let response = self.http.get(&format!("/api/datasets/{id}/preview"))?;
        if response.status == 404 {
            return Ok(None);
        }
        let v = self.expect_json(response, 200, FEATURE)?;
        let rows = v
            .get("rows")
            .and_then(Value::as_array)
            .ok_or_else(|| wrong(FEATURE, format!("no \"rows\" in {}", short(&v))))?
            .iter()
            .map(|r| strings(r, FEATURE))
            .collect::<Outcome<Vec<_>>>()?;
        Ok(Some(Preview {
            columns: strings(v.get("columns").unwrap_or(&Value::Null), FEATURE)?,
            rows,
            total_rows: u64_field(&v, "total_rows", FEATURE)?,
        }))
    }

    /// A dataset's CSV; `None` on 404.
    pub fn download(&mut self, id: u64) -> Outcome<Option<String>> {
        let response = self.http.get(&format!("/api/datasets/{id}/download"))?;
        if response.status == 404 {
            return Ok(None);
        }
        let response = self.expect(response, 200, failed::DOWNLOAD)?;
        Ok(Some(text_of(&response, failed::DOWNLOAD)?.to_owned()))
    }

    /// The raw answer to downloading dataset `id` (for the exploit, which reads any status).
    pub fn download_raw(&mut self, id: &str) -> Outcome<Response> {
        self.http.get(&format!("/api/datasets/{id}/download"))
    }

    /// Exports dataset `id` as `format` (`json` or `tsv`); the export's file name.
    pub fn export(&mut self, id: u64, format: &str) -> Outcome<String> {
        const FEATURE: &str = failed::EXPORT;
        let response = self.http.post_json(&format!("/api/datasets/{id}/export"), &json!({"format": format}))?;
        let v = self.expect_json(response, 201, FEATURE)?;
        str_field(&v, "file", FEATURE)
    }

    /// Submits the private draft `id` for the data steward's release review; who will review it.
    pub fn request_review(&mut self, id: u64) -> Outcome<Vec<String>> {
        const FEATURE: &str = failed::REVIEW;
        let response = self.http.post_json(&format!("/api/datasets/{id}/review"), &json!({}))?;
        let v = self.expect_json(response, 200, FEATURE)?;
        if str_field(&v, "review", FEATURE)? != "pending" {
            return Err(wrong(FEATURE, format!("dataset {id} submitted for review: {}", short(&v))));
        }
        strings(v.get("reviewers").unwrap_or(&Value::Null), FEATURE)
    }

    /// The status the data steward's review queue answers this session with.
    pub fn review_queue_status(&mut self) -> Outcome<u16> {
        Ok(self.http.get("/api/review?limit=20")?.status)
    }

    /// The raw answer to fetching export `file`.
    pub fn fetch_export(&mut self, file: &str) -> Outcome<Response> {
        self.http.get(&format!("/api/exports?file={}", query_encode(file)))
    }

    /// Adds a note; its id.
    pub fn add_note(&mut self, title: &str, body: &str) -> Outcome<u64> {
        const FEATURE: &str = failed::NOTE;
        let response = self.http.post_json("/api/notes", &json!({"title": title, "body": body}))?;
        let v = self.expect_json(response, 201, FEATURE)?;
        if str_field(&v, "body", FEATURE)? != body {
            return Err(wrong(FEATURE, format!("the saved note reads differently: {}", short(&v))));
        }
        u64_field(&v, "id", FEATURE)
    }

    /// The logged-in user's notes.
    pub fn notes(&mut self) -> Outcome<Vec<Note>> {
        const FEATURE: &str = failed::NOTES;
        let response = self.http.get("/api/notes")?;
        let v = self.expect_json(response, 200, FEATURE)?;
        v.get("notes")
            .and_then(Value::as_array)
            .ok_or_else(|| wrong(FEATURE, format!("no \"notes\" list in {}", short(&v))))?
            .iter()
            .map(|n| Ok(Note { title: str_field(n, "title", FEATURE)?, body: str_field(n, "body", FEATURE)? }))
            .collect()
    }

    /// The HTML home page, optionally searched.
    pub fn home(&mut self, query: Option<&str>) -> Outcome<String> {
        let path = match query {
            Some(q) => format!("/?q={}", query_encode(q)),
            None => "/".to_owned(),
        };
        let response = self.http.get(&path)?;
        Ok(text_of(&self.expect(response, 200, failed::HOME)?, failed::HOME)?.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::query_encode;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(query_encode("交通 a&b/../x"), "%E4%BA%A4%E9%80%9A%20a%26b%2F..%2Fx");
    }
}
