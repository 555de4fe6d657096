//! A client of CityPass's JSON API and OAuth endpoints, as one browser (or one relying
//! service's back end): each call checks the status and the shape of the answer and says, in
//! the team's words, which feature broke.

use gongfang_checker_sdk::http::{Http, Response};
use gongfang_checker_sdk::{Ctx, Failure, Outcome};
use serde_json::{Value, json};

use crate::crypto;
use crate::data::{Citizen, Document, RelyingService, WalletItem};

/// What `/api/me` says about the logged-in citizen.
#[derive(Debug, Clone)]
pub struct Me {
    pub sub: String,
    pub name: String,
    pub name_zh: String,
    pub id_number: String,
    pub phone: String,
}

/// A wallet item as the service returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: u64,
    pub kind: String,
    pub title: String,
    pub issuer: String,
    pub content: String,
}

/// A signed document as the service returns it (`content` only where the owner reads it).
#[derive(Debug, Clone)]
pub struct Signed {
    pub reference: String,
    pub title: String,
    pub digest: String,
    pub signature: String,
    pub content: Option<String>,
}

/// What `/api/verify` concluded.
#[derive(Debug, Clone)]
pub struct Verification {
    pub valid: bool,
    pub digest: String,
    /// (CityPass ID, name) of the signer, when valid.
    pub signer: Option<(String, String)>,
}

/// A registered relying service's credentials.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub secret: String,
    pub redirect_uri: String,
}

/// Whether the service let a citizen in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    In,
    /// The service answered 401: unknown identity card number or wrong password.
    Rejected,
}

/// One browser session (or one relying service's back end) talking to CityPass.
pub struct CityPass {
    http: Http,
}

/// A feature as the team reads its name: (English, Hong Kong Chinese).
pub type Feature = (&'static str, &'static str);

/// The public message for a feature that broke, in both languages.
pub fn broken(feature: Feature) -> String {
    let (en, zh) = feature;
    let mut chars = en.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>()).unwrap_or_default();
    format!("{first}{} does not work / {zh}無法運作", chars.as_str())
}

pub fn wrong(feature: Feature, what: impl Into<String>) -> Failure {
    Failure::mumble(broken(feature)).with_private(what.into())
}

pub fn str_field(v: &Value, key: &str, feature: Feature) -> Outcome<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| wrong(feature, format!("no string {key:?} in {}", short(v))))
}

fn u64_field(v: &Value, key: &str, feature: Feature) -> Outcome<u64> {
    v.get(key).and_then(Value::as_u64).ok_or_else(|| wrong(feature, format!("no number {key:?} in {}", short(v))))
}

pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 { format!("{}…", &s[..s.floor_char_boundary(300)]) } else { s }
}

pub fn item(v: &Value, feature: Feature) -> Outcome<Item> {
    Ok(Item {
        id: u64_field(v, "id", feature)?,
        kind: str_field(v, "kind", feature)?,
        title: str_field(v, "title", feature)?,
        issuer: str_field(v, "issuer", feature)?,
        content: str_field(v, "content", feature)?,
    })
}

fn list<'a>(v: &'a Value, key: &str, feature: Feature) -> Outcome<&'a Vec<Value>> {
    v.get(key).and_then(Value::as_array).ok_or_else(|| wrong(feature, format!("no {key:?} list in {}", short(v))))
}

fn signed(v: &Value, feature: Feature) -> Outcome<Signed> {
    Ok(Signed {
        reference: str_field(v, "ref", feature)?,
        title: str_field(v, "title", feature)?,
        digest: str_field(v, "digest", feature)?,
        signature: str_field(v, "signature", feature)?,
        content: v.get("content").and_then(Value::as_str).map(str::to_owned),
    })
}

/// Percent-encodes a query-string or form value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes a percent-encoded query value (`+` is a space).
pub fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit() => {
                let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(bytes[i + 1]) << 4 | hex(bytes[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A form body from (name, value) pairs.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields.iter().map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v))).collect::<Vec<_>>().join("&")
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

impl CityPass {
    /// A fresh session (no cookies) with the target.
    pub fn new(ctx: &Ctx) -> CityPass {
        CityPass { http: Http::new(ctx, ctx.port()) }
    }

    fn expect(&self, response: Response, status: u16, feature: Feature) -> Outcome<Response> {
        response.expect_status(status).map_err(|f| f.context(broken(feature)))
    }

    /// Registers `citizen`; their CityPass ID, or `None` when the identity card number is
    /// taken (409).
    pub fn register(&mut self, citizen: &Citizen) -> Outcome<Option<String>> {
        const FEATURE: Feature = ("registration", "登記");
        let body = json!({
            "name": citizen.name,
            "name_zh": citizen.name_zh,
            "id_number": citizen.id_number,
            "phone": citizen.phone,
            "password": citizen.password,
        });
        let response = self.http.post_json("/api/register", &body)?;
        if response.status == 409 {
            return Ok(None);
        }
        let v = self.expect(response, 201, FEATURE)?.json()?;
        let sub = str_field(&v, "sub", FEATURE)?;
        if !sub.starts_with("CP") || sub.len() != 12 {
            return Err(wrong(FEATURE, format!("{sub:?} is not a CityPass ID")));
        }
        Ok(Some(sub))
    }

    /// Logs in; the session cookie is kept for later calls.
    pub fn login(&mut self, id_number: &str, password: &str) -> Outcome<Login> {
        const FEATURE: Feature = ("login", "登入");
        let response = self.http.post_json("/api/login", &json!({"id_number": id_number, "password": password}))?;
        if response.status == 401 {
            return Ok(Login::Rejected);
        }
        self.expect(response, 200, FEATURE)?;
        if self.http.cookie("citypass_session").is_none() {
            return Err(wrong(FEATURE, "login answered 200 but set no session cookie"));
        }
        Ok(Login::In)
    }

    pub fn logout(&mut self) -> Outcome<()> {
        let response = self.http.post_json("/api/logout", &json!({}))?;
        self.expect(response, 200, ("logout", "登出"))?;
        Ok(())
    }

    /// The logged-in citizen's profile; `None` when not logged in (401).
    pub fn me(&mut self) -> Outcome<Option<Me>> {
        const FEATURE: Feature = ("the profile", "個人資料");
        let response = self.http.get("/api/me")?;
        if response.status == 401 {
            return Ok(None);
        }
        let v = self.expect(response, 200, FEATURE)?.json()?;
        Ok(Some(Me {
            sub: str_field(&v, "sub", FEATURE)?,
            name: str_field(&v, "name", FEATURE)?,
            name_zh: str_field(&v, "name_zh", FEATURE)?,
            id_number: str_field(&v, "id_number", FEATURE)?,
            phone: str_field(&v, "phone", FEATURE)?,
        }))
    }

    /// Adds `item` to the wallet; the item as stored.
    pub fn add_item(&mut self, wanted: &WalletItem) -> Outcome<Item> {
        const FEATURE: Feature = ("adding to the data wallet", "加入資料錢包");
        let body =
            json!({"kind": wanted.kind, "title": wanted.title, "issuer": wanted.issuer, "content": wanted.content});
        let response = self.http.post_json("/api/wallet", &body)?;
        let got = item(&self.expect(response, 201, FEATURE)?.json()?, FEATURE)?;
        if got.kind != wanted.kind || got.title != wanted.title || got.content != wanted.content {
            return Err(wrong(FEATURE, format!("stored {:?} as {got:?}", wanted.title)));
        }
        Ok(got)
    }

    /// The wallet, newest first, optionally of one kind.
    pub fn wallet(&mut self, kind: Option<&str>) -> Outcome<Vec<Item>> {
        const FEATURE: Feature = ("the data wallet", "資料錢包");
        let path = match kind {
            Some(k) => format!("/api/wallet?kind={}&limit=100", url_encode(k)),
            None => "/api/wallet?limit=100".to_owned(),
        };
        let response = self.http.get(&path)?;
        let v = self.expect(response, 200, FEATURE)?.json()?;
        list(&v, "items", FEATURE)?.iter().map(|i| item(i, FEATURE)).collect()
    }

    /// One wallet item; `None` on 404.
    pub fn item(&mut self, id: u64) -> Outcome<Option<Item>> {
        const FEATURE: Feature = ("a wallet item", "錢包項目");
        let response = self.http.get(&format!("/api/wallet/{id}"))?;
        if response.status == 404 {
            return Ok(None);
        }
        Ok(Some(item(&self.expect(response, 200, FEATURE)?.json()?, FEATURE)?))
    }

    pub fn remove_item(&mut self, id: u64) -> Outcome<()> {
        let response = self.http.request("DELETE", &format!("/api/wallet/{id}"), &[], &[])?;
        self.expect(response, 200, ("removing a wallet item", "移除錢包項目"))?;
        Ok(())
    }

    /// Signs `document`.
    pub fn sign(&mut self, document: &Document) -> Outcome<Signed> {
        const FEATURE: Feature = ("signing a document", "簽署文件");
        let response =
            self.http.post_json("/api/documents", &json!({"title": document.title, "content": document.content}))?;
        let got = signed(&self.expect(response, 201, FEATURE)?.json()?, FEATURE)?;
        if got.title != document.title || got.signature.len() < 16 || !got.reference.starts_with("SD-") {
            return Err(wrong(FEATURE, format!("signed {:?}, got {got:?}", document.title)));
        }
        Ok(got)
    }

    /// The citizen's signed documents, newest first.
    pub fn documents(&mut self) -> Outcome<Vec<Signed>> {
        const FEATURE: Feature = ("the list of signed documents", "已簽署文件清單");
        let response = self.http.get("/api/documents?limit=100")?;
        let v = self.expect(response, 200, FEATURE)?.json()?;
        list(&v, "documents", FEATURE)?.iter().map(|d| signed(d, FEATURE)).collect()
    }

    /// One of the citizen's signed documents with its content; `None` on 404. `Err` with the
    /// status in the private log for anything but 200 and 404.
    pub fn document(&mut self, reference: &str) -> Outcome<Option<Signed>> {
        const FEATURE: Feature = ("reading a signed document", "讀取已簽署文件");
        let response = self.http.get(&format!("/api/documents/{reference}"))?;
        if response.status == 404 {
            return Ok(None);
        }
        Ok(Some(signed(&self.expect(response, 200, FEATURE)?.json()?, FEATURE)?))
    }

    /// The raw answer to reading a document (to see what a stranger gets).
    pub fn document_raw(&mut self, reference: &str) -> Outcome<Response> {
        self.http.get(&format!("/api/documents/{reference}"))
    }

    /// Verifies a signature, as anyone holding the document may.
    pub fn verify(&mut self, reference: &str, content: &str, signature: &str) -> Outcome<Verification> {
        const FEATURE: Feature = ("signature verification", "核實簽署");
        let body = json!({"ref": reference, "content": content, "signature": signature});
        let response = self.http.post_json("/api/verify", &body)?;
        let v = self.expect(response, 200, FEATURE)?.json()?;
        let valid = v
            .get("valid")
            .and_then(Value::as_bool)
            .ok_or_else(|| wrong(FEATURE, format!("no \"valid\" in {}", short(&v))))?;
        let signer = match v.get("signer") {
            Some(s) if valid => Some((str_field(s, "sub", FEATURE)?, str_field(s, "name", FEATURE)?)),
            _ => None,
        };
        Ok(Verification { valid, digest: str_field(&v, "digest", FEATURE)?, signer })
    }

    /// Registers a relying service owned by the logged-in citizen.
    pub fn register_client(&mut self, service: &RelyingService) -> Outcome<Client> {
        const FEATURE: Feature = ("registering a relying service", "登記依賴服務");
        let body = json!({"name": service.name, "redirect_uri": service.redirect_uri});
        let response = self.http.post_json("/api/clients", &body)?;
        let v = self.expect(response, 201, FEATURE)?.json()?;
        Ok(Client {
            client_id: str_field(&v, "client_id", FEATURE)?,
            secret: str_field(&v, "client_secret", FEATURE)?,
            redirect_uri: service.redirect_uri.clone(),
        })
    }

    /// The client ids of the logged-in citizen's relying services.
    pub fn clients(&mut self) -> Outcome<Vec<String>> {
        const FEATURE: Feature = ("the list of relying services", "依賴服務清單");
        let response = self.http.get("/api/clients")?;
        let v = self.expect(response, 200, FEATURE)?.json()?;
        list(&v, "clients", FEATURE)?.iter().map(|c| str_field(c, "client_id", FEATURE)).collect()
    }

    /// The citizen's authorisation records: (client id, scope).
    pub fn consents(&mut self) -> Outcome<Vec<(String, String)>> {
        const FEATURE: Feature = ("the authorisation records", "授權紀錄");
        let response = self.http.get("/api/consents")?;
        let v = self.expect(response, 200, FEATURE)?.json()?;
        list(&v, "consents", FEATURE)?
            .iter()
            .map(|c| Ok((str_field(c, "client_id", FEATURE)?, str_field(c, "scope", FEATURE)?)))
            .collect()
    }

    /// The OpenID Connect discovery document.
    pub fn discovery(&mut self) -> Outcome<Value> {
        let response = self.http.get("/.well-known/openid-configuration")?;
        self.expect(response, 200, ("the OpenID configuration", "OpenID 設定"))?.json()
    }

    /// `GET path`, any status.
    pub fn get(&mut self, path: &str) -> Outcome<Response> {
        self.http.get(path)
    }

    /// An HTML page, which must answer 200.
    pub fn page(&mut self, path: &str, feature: Feature) -> Outcome<String> {
        let response = self.http.get(path)?;
        Ok(self.expect(response, 200, feature)?.text()?.to_owned())
    }

    /// `POST path` with a form body and extra headers, any status.
    pub fn post_form(&mut self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Outcome<Response> {
        let mut all = vec![FORM];
        all.extend_from_slice(headers);
        self.http.request("POST", path, &all, form(fields).as_bytes())
    }

    /// `GET path` with extra headers, any status.
    pub fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Outcome<Response> {
        self.http.request("GET", path, headers, &[])
    }
}

/// The `Authorization` header of HTTP Basic client authentication (RFC 6749 §2.3.1).
pub fn basic_auth(client_id: &str, secret: &str) -> String {
    format!("Basic {}", crypto::base64(format!("{}:{}", url_encode(client_id), url_encode(secret)).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_values_round_trip() {
        for s in ["a b&c=d/é", "SD-7K3M", "100%"] {
            assert_eq!(url_decode(&url_encode(s)), s);
        }
        assert_eq!(url_decode("a%20b+c%2"), "a b c%2");
        assert_eq!(url_decode("%E9%99%B3%zz"), "陳%zz");
        assert_eq!(url_encode("a b"), "a%20b");
    }
}
