//! Clients of the DataBridge Consent Gateway: a citizen's browser session (JSON API and the
//! bilingual pages, with their CSRF tokens) and a department's API client (HTTP Basic or a
//! bearer token). Each call checks the status and the shape of the answer and says, in both
//! languages, which feature broke.

use gongfang_checker_sdk::http::{Http, Response};
use gongfang_checker_sdk::{Ctx, Failure, Outcome};
use serde_json::{Value, json};

use crate::data;

/// A feature of the gateway, named for the team in English and Chinese.
#[derive(Debug, Clone, Copy)]
pub struct Feature(pub &'static str, pub &'static str);

pub const HOME: Feature = Feature("The home page", "主頁");
pub const REGISTER: Feature = Feature("Citizen registration", "市民登記");
pub const LOGIN: Feature = Feature("Login", "登入");
pub const LOGOUT: Feature = Feature("Logout", "登出");
pub const ACCOUNT: Feature = Feature("The account page", "帳戶資料");
pub const DEPT_REGISTER: Feature = Feature("Department registration", "部門登記");
pub const TOKEN: Feature = Feature("Client authentication", "用戶端驗證");
pub const DIRECTORY: Feature = Feature("The department directory", "部門目錄");
pub const DEPOSIT: Feature = Feature("Depositing a record", "存入紀錄");
pub const RECORDS: Feature = Feature("A holder's records", "持有部門的紀錄");
pub const VERIFY: Feature = Feature("Record verification", "紀錄核實");
pub const REQUEST: Feature = Feature("Consent requests", "授權請求");
pub const DECIDE: Feature = Feature("Granting consent", "授權");
pub const GRANT_PAGE: Feature = Feature("The grant page", "授權頁面");
pub const CONSENTS: Feature = Feature("The consent list", "授權列表");
pub const REVOKE: Feature = Feature("Revoking consent", "撤回授權");
pub const EXCHANGE: Feature = Feature("Data exchange", "數據交換");
pub const AUDIT: Feature = Feature("The audit trail", "查閱紀錄");
pub const MY_RECORDS: Feature = Feature("A citizen's records", "市民紀錄");
pub const DOCS: Feature = Feature("The API guide", "介面指南");

/// `mumble`: `feature` does not work, with what went wrong for the organisers.
pub fn broken(feature: Feature, what: impl Into<String>) -> Failure {
    Failure::mumble(format!("{} does not work / {}出現問題", feature.0, feature.1)).with_private(what.into())
}

fn expect(response: Response, status: u16, feature: Feature) -> Outcome<Response> {
    response
        .expect_status(status)
        .map_err(|f| f.context(format!("{} does not work / {}出現問題", feature.0, feature.1)))
}

fn json_of(response: &Response, feature: Feature) -> Outcome<Value> {
    response.json().map_err(|f| f.context(format!("{} does not work / {}出現問題", feature.0, feature.1)))
}

fn text_of(response: &Response, feature: Feature) -> Outcome<String> {
    response
        .text()
        .map(str::to_owned)
        .map_err(|f| f.context(format!("{} does not work / {}出現問題", feature.0, feature.1)))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 { format!("{}…", &s[..s.floor_char_boundary(300)]) } else { s }
}

fn str_field(v: &Value, key: &str, feature: Feature) -> Outcome<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| broken(feature, format!("no string {key:?} in {}", short(v))))
}

fn opt_str(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn list<'a>(v: &'a Value, key: &str, feature: Feature) -> Outcome<&'a Vec<Value>> {
    v.get(key).and_then(Value::as_array).ok_or_else(|| broken(feature, format!("no {key:?} list in {}", short(v))))
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

/// Standard base64 with padding, for HTTP Basic.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The hidden CSRF token of the first form on `page`.
fn csrf_of(page: &str, feature: Feature) -> Outcome<String> {
    let marker = "name=\"csrf\" value=\"";
    let start =
        page.find(marker).map(|i| i + marker.len()).ok_or_else(|| broken(feature, "no CSRF token on the page"))?;
    let end = page[start..].find('"').ok_or_else(|| broken(feature, "an unterminated CSRF token"))?;
    Ok(page[start..start + end].to_owned())
}

/// A record as the gateway shows it.
#[derive(Debug, Clone)]
pub struct RecordView {
    pub id: String,
    pub holder: String,
    pub citizen: String,
    pub kind: String,
    pub title: String,
    pub fields: Vec<(String, String)>,
    pub reference: String,
    pub note: String,
}

impl RecordView {
    fn parse(v: &Value, feature: Feature) -> Outcome<RecordView> {
        let mut fields: Vec<(String, String)> = v
            .get("fields")
            .and_then(Value::as_object)
            .ok_or_else(|| broken(feature, format!("no \"fields\" object in {}", short(v))))?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        fields.sort();
        Ok(RecordView {
            id: str_field(v, "id", feature)?,
            holder: str_field(v, "holder", feature)?,
            citizen: str_field(v, "citizen", feature)?,
            kind: str_field(v, "type", feature)?,
            title: str_field(v, "title", feature)?,
            fields,
            reference: str_field(v, "reference", feature)?,
            note: str_field(v, "note", feature)?,
        })
    }

    /// Whether this is `record` as deposited (fields in any order).
    pub fn same_as(&self, record: &data::Record) -> bool {
        let mut fields = record.fields.clone();
        fields.sort();
        self.kind == record.kind
            && self.title == record.title
            && self.fields == fields
            && self.reference == record.reference
            && self.note == record.note
    }

    /// Every text of the record, to look for a flag in.
    pub fn all_text(&self) -> String {
        let mut s = format!("{}\n{}\n{}", self.title, self.reference, self.note);
        for (k, v) in &self.fields {
            s.push_str(&format!("\n{k}: {v}"));
        }
        s
    }
}

/// A consent request as the requesting department sees it.
#[derive(Debug, Clone)]
pub struct RequestView {
    pub id: String,
    pub citizen: String,
    pub holder: String,
    pub kind: String,
    pub purpose: String,
    pub case_note: String,
    pub status: String,
    pub consent: Option<String>,
}

impl RequestView {
    fn parse(v: &Value, feature: Feature) -> Outcome<RequestView> {
        Ok(RequestView {
            id: str_field(v, "id", feature)?,
            citizen: str_field(v, "citizen", feature)?,
            holder: str_field(v, "holder", feature)?,
            kind: str_field(v, "type", feature)?,
            purpose: str_field(v, "purpose", feature)?,
            case_note: str_field(v, "case_note", feature)?,
            status: str_field(v, "status", feature)?,
            consent: opt_str(v, "consent"),
        })
    }
}

/// A consent request as the citizen sees it.
#[derive(Debug, Clone)]
pub struct Asked {
    pub id: String,
    pub requester: String,
    pub holder: String,
    pub kind: String,
    pub purpose: String,
    pub status: String,
}

/// A consent as the citizen or the department lists it.
#[derive(Debug, Clone)]
pub struct ConsentView {
    pub id: String,
    pub requester: String,
    pub holder: String,
    pub kind: String,
    pub status: String,
}

impl ConsentView {
    fn parse(v: &Value, feature: Feature) -> Outcome<ConsentView> {
        Ok(ConsentView {
            id: str_field(v, "id", feature)?,
            requester: str_field(v, "requester", feature)?,
            holder: str_field(v, "holder", feature)?,
            kind: str_field(v, "type", feature)?,
            status: str_field(v, "status", feature)?,
        })
    }
}

/// One line of the citizen's audit trail.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub event: String,
    pub requester: String,
    pub consent: Option<String>,
    pub record: Option<String>,
}

/// Whether the gateway let someone in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    In,
    /// 401: no such user or client, or a wrong password or secret.
    Rejected,
}

/// A citizen's browser session (or an anonymous visitor's).
pub struct Browser {
    http: Http,
}

impl Browser {
    pub fn new(ctx: &Ctx) -> Browser {
        Browser { http: Http::new(ctx, ctx.port()) }
    }

    fn post(&mut self, path: &str, body: &Value) -> Outcome<Response> {
        self.http.post_json(path, body)
    }

    /// Registers through the JSON API; false when the user name is taken.
    pub fn register(&mut self, c: &data::Citizen) -> Outcome<bool> {
        let body = json!({"username": c.username, "password": c.password, "name": c.name, "name_zh": c.name_zh});
        let response = self.post("/api/citizens", &body)?;
        if response.status == 409 {
            return Ok(false);
        }
        let v = json_of(&expect(response, 201, REGISTER)?, REGISTER)?;
        if str_field(&v, "username", REGISTER)? != c.username {
            return Err(broken(REGISTER, format!("registered {}, got {}", c.username, short(&v))));
        }
        Ok(true)
    }

    /// Registers through the page's form; false when the user name is taken.
    pub fn register_form(&mut self, c: &data::Citizen) -> Outcome<bool> {
        let fields =
            [("username", c.username.as_str()), ("password", &c.password), ("name", &c.name), ("name_zh", &c.name_zh)];
        let response = self.http.post_form("/register", &fields)?;
        if response.status == 409 {
            return Ok(false);
        }
        let response = expect(response, 303, REGISTER)?;
        if !response.header("location").is_some_and(|l| l.starts_with("/login")) {
            return Err(broken(REGISTER, format!("the form redirected to {:?}", response.header("location"))));
        }
        Ok(true)
    }

    /// Logs in through the JSON API; the session cookie is kept.
    pub fn login(&mut self, username: &str, password: &str) -> Outcome<Login> {
        let response = self.post("/api/login", &json!({"username": username, "password": password}))?;
        if response.status == 401 {
            return Ok(Login::Rejected);
        }
        expect(response, 200, LOGIN)?;
        if self.http.cookie("session").is_none() {
            return Err(broken(LOGIN, "login answered 200 but set no session cookie"));
        }
        Ok(Login::In)
    }

    /// Logs in through the login form, which sends the citizen on to `next`.
    pub fn login_form(&mut self, username: &str, password: &str, next: &str) -> Outcome<Login> {
        let response =
            self.http.post_form("/login", &[("username", username), ("password", password), ("next", next)])?;
        if response.status == 401 {
            return Ok(Login::Rejected);
        }
        let response = expect(response, 303, LOGIN)?;
        if response.header("location") != Some(next) || self.http.cookie("session").is_none() {
            return Err(broken(LOGIN, format!("the form sent us to {:?}, wanted {next}", response.header("location"))));
        }
        Ok(Login::In)
    }

    pub fn logout(&mut self) -> Outcome<()> {
        expect(self.post("/api/logout", &json!({}))?, 200, LOGOUT)?;
        Ok(())
    }

    /// Logs out with the button every page carries (a form with a CSRF token).
    pub fn logout_form(&mut self) -> Outcome<()> {
        let page = self.page("/consents", LOGOUT)?;
        let csrf = csrf_of(&page, LOGOUT)?;
        let response = expect(self.http.post_form("/logout", &[("csrf", csrf.as_str())])?, 303, LOGOUT)?;
        if response.header("location") != Some("/") {
            return Err(broken(LOGOUT, format!("logging out sent us to {:?}", response.header("location"))));
        }
        Ok(())
    }

    /// (user name, name) of the logged-in citizen; `None` when not logged in.
    pub fn me(&mut self) -> Outcome<Option<(String, String)>> {
        let response = self.http.get("/api/me")?;
        if response.status == 401 {
            return Ok(None);
        }
        let v = json_of(&expect(response, 200, ACCOUNT)?, ACCOUNT)?;
        Ok(Some((str_field(&v, "username", ACCOUNT)?, str_field(&v, "name", ACCOUNT)?)))
    }

    /// An HTML page that must answer 200.
    pub fn page(&mut self, path: &str, feature: Feature) -> Outcome<String> {
        let response = expect(self.http.get(path)?, 200, feature)?;
        text_of(&response, feature)
    }

    /// Consent requests waiting for this citizen.
    pub fn asked(&mut self) -> Outcome<Vec<Asked>> {
        let v = json_of(&expect(self.http.get("/api/my/requests")?, 200, REQUEST)?, REQUEST)?;
        list(&v, "requests", REQUEST)?
            .iter()
            .map(|q| {
                Ok(Asked {
                    id: str_field(q, "id", REQUEST)?,
                    requester: str_field(q, "requester", REQUEST)?,
                    holder: str_field(q, "holder", REQUEST)?,
                    kind: str_field(q, "type", REQUEST)?,
                    purpose: str_field(q, "purpose", REQUEST)?,
                    status: str_field(q, "status", REQUEST)?,
                })
            })
            .collect()
    }

    /// Grants request `id` for `days` through the API; the new consent.
    pub fn approve(&mut self, id: &str, days: u64) -> Outcome<ConsentView> {
        let response = self.post(&format!("/api/my/requests/{id}/approve"), &json!({"days": days}))?;
        ConsentView::parse(&json_of(&expect(response, 201, DECIDE)?, DECIDE)?, DECIDE)
    }

    pub fn decline(&mut self, id: &str) -> Outcome<()> {
        expect(self.post(&format!("/api/my/requests/{id}/decline"), &json!({}))?, 200, DECIDE)?;
        Ok(())
    }

    /// Answers request `id` on its grant page, as a person would.
    pub fn decide_form(&mut self, id: &str, approve: bool, days: u64) -> Outcome<()> {
        let page = self.page(&format!("/grant/{id}"), GRANT_PAGE)?;
        let csrf = csrf_of(&page, GRANT_PAGE)?;
        let days = days.to_string();
        let decision = if approve { "approve" } else { "decline" };
        let fields = [("csrf", csrf.as_str()), ("days", days.as_str()), ("decision", decision)];
        let response = expect(self.http.post_form(&format!("/grant/{id}"), &fields)?, 303, DECIDE)?;
        if response.header("location") != Some("/consents") {
            return Err(broken(DECIDE, format!("the grant form sent us to {:?}", response.header("location"))));
        }
        Ok(())
    }

    pub fn consents(&mut self) -> Outcome<Vec<ConsentView>> {
        let v = json_of(&expect(self.http.get("/api/my/consents")?, 200, CONSENTS)?, CONSENTS)?;
        list(&v, "consents", CONSENTS)?.iter().map(|c| ConsentView::parse(c, CONSENTS)).collect()
    }

    pub fn revoke(&mut self, id: &str) -> Outcome<()> {
        let v =
            json_of(&expect(self.post(&format!("/api/my/consents/{id}/revoke"), &json!({}))?, 200, REVOKE)?, REVOKE)?;
        if str_field(&v, "status", REVOKE)? != "revoked" {
            return Err(broken(REVOKE, format!("a revoked consent reads {}", short(&v))));
        }
        Ok(())
    }

    /// Revokes consent `id` with its button on the consent list.
    pub fn revoke_form(&mut self, id: &str) -> Outcome<()> {
        let page = self.page("/consents", CONSENTS)?;
        let form = format!("action=\"/consents/{id}/revoke\"");
        let at = page.find(&form).ok_or_else(|| broken(REVOKE, format!("no revoke button for {id}")))?;
        let csrf = csrf_of(&page[at..], REVOKE)?;
        expect(self.http.post_form(&format!("/consents/{id}/revoke"), &[("csrf", csrf.as_str())])?, 303, REVOKE)?;
        Ok(())
    }

    pub fn audit(&mut self) -> Outcome<Vec<AuditEvent>> {
        let v = json_of(&expect(self.http.get("/api/my/audit")?, 200, AUDIT)?, AUDIT)?;
        list(&v, "events", AUDIT)?
            .iter()
            .map(|e| {
                Ok(AuditEvent {
                    event: str_field(e, "event", AUDIT)?,
                    requester: str_field(e, "requester", AUDIT)?,
                    consent: opt_str(e, "consent"),
                    record: opt_str(e, "record"),
                })
            })
            .collect()
    }

    pub fn records(&mut self) -> Outcome<Vec<RecordView>> {
        let v = json_of(&expect(self.http.get("/api/my/records?limit=200")?, 200, MY_RECORDS)?, MY_RECORDS)?;
        list(&v, "records", MY_RECORDS)?.iter().map(|r| RecordView::parse(r, MY_RECORDS)).collect()
    }

    /// Anyone checks a record number: (holder, type), or `None` for an unknown number.
    pub fn verify(&mut self, id: &str) -> Outcome<Option<(String, String)>> {
        let response = self.http.get(&format!("/api/records/{}/verify", query_encode(id)))?;
        if response.status == 404 {
            return Ok(None);
        }
        let v = json_of(&expect(response, 200, VERIFY)?, VERIFY)?;
        Ok(Some((str_field(&v, "holder", VERIFY)?, str_field(&v, "type", VERIFY)?)))
    }

    /// The client ids in the public directory of departments with `role`.
    pub fn directory(&mut self, role: &str) -> Outcome<Vec<String>> {
        let response = self.http.get(&format!("/api/departments?role={role}&limit=200"))?;
        let v = json_of(&expect(response, 200, DIRECTORY)?, DIRECTORY)?;
        list(&v, "departments", DIRECTORY)?.iter().map(|d| str_field(d, "client_id", DIRECTORY)).collect()
    }
}

/// How a department authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// HTTP Basic on every call.
    Basic,
    /// A bearer token, asked for with HTTP Basic and a form body.
    TokenBasic,
    /// A bearer token, asked for with the credentials in a form body.
    TokenForm,
    /// A bearer token, asked for with the credentials in a JSON body.
    TokenJson,
}

impl Auth {
    pub fn pick(rng: &mut gongfang_checker_sdk::Rng) -> Auth {
        *rng.pick(&[Auth::Basic, Auth::Basic, Auth::TokenBasic, Auth::TokenForm, Auth::TokenJson])
    }
}

/// A department's client credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: String,
}

/// A department calling the API.
pub struct Dept {
    http: Http,
    pub id: String,
    authorization: String,
}

/// Registers `department`; its credentials.
pub fn register_department(ctx: &Ctx, department: &data::Department) -> Outcome<Credentials> {
    let mut http = Http::new(ctx, ctx.port());
    let body = json!({
        "name": department.name,
        "name_zh": department.name_zh,
        "roles": department.roles,
        "contact": department.contact,
    });
    let v = json_of(&expect(http.post_json("/api/departments", &body)?, 201, DEPT_REGISTER)?, DEPT_REGISTER)?;
    let roles: Vec<&str> =
        v.get("roles").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    if str_field(&v, "name", DEPT_REGISTER)? != department.name || roles != department.roles {
        return Err(broken(DEPT_REGISTER, format!("registered {:?}, got {}", department.name, short(&v))));
    }
    Ok(Credentials {
        client_id: str_field(&v, "client_id", DEPT_REGISTER)?,
        client_secret: str_field(&v, "client_secret", DEPT_REGISTER)?,
    })
}

impl Dept {
    /// A client for `creds` authenticating with `auth`; `Rejected` when the gateway does not
    /// know the credentials (any more).
    pub fn connect(ctx: &Ctx, creds: &Credentials, auth: Auth) -> Outcome<Result<Dept, Login>> {
        let mut http = Http::new(ctx, ctx.port());
        let basic = format!("Basic {}", base64(format!("{}:{}", creds.client_id, creds.client_secret).as_bytes()));
        let form = "application/x-www-form-urlencoded";
        let response = match auth {
            Auth::Basic => {
                return Ok(Ok(Dept { http, id: creds.client_id.clone(), authorization: basic }));
            }
            Auth::TokenBasic => http.request(
                "POST",
                "/api/oauth/token",
                &[("Content-Type", form), ("Authorization", &basic)],
                b"grant_type=client_credentials",
            )?,
            Auth::TokenForm => {
                let body = format!(
                    "grant_type=client_credentials&client_id={}&client_secret={}",
                    query_encode(&creds.client_id),
                    query_encode(&creds.client_secret)
                );
                http.request("POST", "/api/oauth/token", &[("Content-Type", form)], body.as_bytes())?
            }
            Auth::TokenJson => http.post_json(
                "/api/oauth/token",
                &json!({"grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": creds.client_secret}),
            )?,
        };
        if response.status == 401 {
            return Ok(Err(Login::Rejected));
        }
        let v = json_of(&expect(response, 200, TOKEN)?, TOKEN)?;
        if !str_field(&v, "token_type", TOKEN)?.eq_ignore_ascii_case("bearer") {
            return Err(broken(TOKEN, format!("not a bearer token: {}", short(&v))));
        }
        let token = str_field(&v, "access_token", TOKEN)?;
        Ok(Ok(Dept { http, id: creds.client_id.clone(), authorization: format!("Bearer {token}") }))
    }

    fn get(&mut self, path: &str) -> Outcome<Response> {
        let auth = self.authorization.clone();
        self.http.request("GET", path, &[("Authorization", &auth)], &[])
    }

    fn post(&mut self, path: &str, body: &Value) -> Outcome<Response> {
        let auth = self.authorization.clone();
        let body = serde_json::to_vec(body).expect("a JSON value always serialises");
        self.http.request("POST", path, &[("Content-Type", "application/json"), ("Authorization", &auth)], &body)
    }

    /// Whether the gateway knows who is calling (`/api/client`).
    pub fn whoami(&mut self) -> Outcome<Option<String>> {
        let response = self.get("/api/client")?;
        if response.status == 401 {
            return Ok(None);
        }
        let v = json_of(&expect(response, 200, TOKEN)?, TOKEN)?;
        Ok(Some(str_field(&v, "client_id", TOKEN)?))
    }

    /// Deposits `record` about `citizen`; the gateway's copy.
    pub fn deposit(&mut self, citizen: &str, record: &data::Record) -> Outcome<RecordView> {
        let fields: serde_json::Map<String, Value> =
            record.fields.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        let body = json!({
            "citizen": citizen,
            "type": record.kind,
            "title": record.title,
            "fields": fields,
            "reference": record.reference,
            "note": record.note,
        });
        let got =
            RecordView::parse(&json_of(&expect(self.post("/api/records", &body)?, 201, DEPOSIT)?, DEPOSIT)?, DEPOSIT)?;
        if !got.same_as(record) || got.citizen != citizen || got.holder != self.id {
            return Err(broken(DEPOSIT, format!("deposited {record:?}, the gateway keeps {got:?}")));
        }
        Ok(got)
    }

    /// One of this holder's records; `None` on 404.
    pub fn record(&mut self, id: &str) -> Outcome<Option<RecordView>> {
        let response = self.get(&format!("/api/records/{id}"))?;
        if response.status == 404 {
            return Ok(None);
        }
        Ok(Some(RecordView::parse(&json_of(&expect(response, 200, RECORDS)?, RECORDS)?, RECORDS)?))
    }

    /// This holder's records about `citizen`.
    pub fn records(&mut self, citizen: &str) -> Outcome<Vec<RecordView>> {
        let response = self.get(&format!("/api/records?citizen={}&limit=200", query_encode(citizen)))?;
        let v = json_of(&expect(response, 200, RECORDS)?, RECORDS)?;
        list(&v, "records", RECORDS)?.iter().map(|r| RecordView::parse(r, RECORDS)).collect()
    }

    /// Files a consent request to `citizen` for `holder`'s records.
    pub fn file(&mut self, citizen: &str, holder: &str, request: &data::Request) -> Outcome<RequestView> {
        let body = json!({
            "citizen": citizen,
            "holder": holder,
            "type": request.kind,
            "purpose": request.purpose,
            "purpose_zh": request.purpose_zh,
            "case_note": request.case_note,
            "days": request.days,
        });
        let v = json_of(&expect(self.post("/api/consent-requests", &body)?, 201, REQUEST)?, REQUEST)?;
        let got = RequestView::parse(&v, REQUEST)?;
        if got.citizen != citizen
            || got.holder != holder
            || got.kind != request.kind
            || got.purpose != request.purpose
            || got.status != "pending"
        {
            return Err(broken(REQUEST, format!("filed {request:?}, got {}", short(&v))));
        }
        Ok(got)
    }

    /// One of this department's requests; `None` on 404.
    pub fn request(&mut self, id: &str) -> Outcome<Option<RequestView>> {
        let response = self.get(&format!("/api/consent-requests/{id}"))?;
        if response.status == 404 {
            return Ok(None);
        }
        Ok(Some(RequestView::parse(&json_of(&expect(response, 200, REQUEST)?, REQUEST)?, REQUEST)?))
    }

    /// This department's requests, newest first.
    pub fn requests(&mut self) -> Outcome<Vec<RequestView>> {
        let v = json_of(&expect(self.get("/api/consent-requests?limit=200")?, 200, REQUEST)?, REQUEST)?;
        list(&v, "requests", REQUEST)?.iter().map(|q| RequestView::parse(q, REQUEST)).collect()
    }

    /// Consents granted to this department.
    pub fn consents(&mut self) -> Outcome<Vec<ConsentView>> {
        let v = json_of(&expect(self.get("/api/consents?limit=200")?, 200, CONSENTS)?, CONSENTS)?;
        list(&v, "consents", CONSENTS)?.iter().map(|c| ConsentView::parse(c, CONSENTS)).collect()
    }

    /// The raw answer to fetching under `consent` (and a given `record`).
    pub fn exchange_raw(&mut self, consent: &str, record: Option<&str>) -> Outcome<Response> {
        let mut path = format!("/api/exchange?consent={}", query_encode(consent));
        if let Some(r) = record {
            path.push_str(&format!("&record={}", query_encode(r)));
        }
        self.get(&path)
    }

    /// Fetches under `consent`; the record, which must be there.
    pub fn exchange(&mut self, consent: &str, record: Option<&str>) -> Outcome<RecordView> {
        let response = expect(self.exchange_raw(consent, record)?, 200, EXCHANGE)?;
        let v = json_of(&response, EXCHANGE)?;
        let r = v.get("record").ok_or_else(|| broken(EXCHANGE, format!("no record in {}", short(&v))))?;
        RecordView::parse(r, EXCHANGE)
    }

    /// The raw answer to the service desk's list of a department's requests.
    pub fn ops_requests_raw(&mut self, department: &str) -> Outcome<Response> {
        self.get(&format!("/api/ops/consent-requests?department={}&limit=200", query_encode(department)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"demo-dept:databridge-demo"), "ZGVtby1kZXB0OmRhdGFicmlkZ2UtZGVtbw==");
    }

    #[test]
    fn csrf_tokens_are_found() {
        let page = r#"<form><input type="hidden" name="csrf" value="abc123"><button>x</button></form>"#;
        assert_eq!(csrf_of(page, HOME).unwrap(), "abc123");
        assert!(csrf_of("<p>none</p>", HOME).is_err());
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(query_encode("a b&c/é"), "a%20b%26c%2F%C3%A9");
    }
}
