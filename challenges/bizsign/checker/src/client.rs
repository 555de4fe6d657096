//! A client of TradeSeal's JSON API and pages, as one browser session (a company administrator,
//! an authorised signer or a stranger): each call checks the status and the shape of the
//! answer and says, in the team's words, which feature broke.

use gongfang_checker_sdk::http::{Http, Response};
use gongfang_checker_sdk::{Ctx, Failure, Outcome};
use serde_json::{Value, json};

use crate::data::{Company, Document, Licence};

/// Whether the service let a user in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    In,
    /// The service answered 401: no such user, or a wrong password or PIN.
    Rejected,
}

/// Who `/api/me` says is logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    pub role: String,
    pub user_id: String,
    pub brn: String,
}

/// A signer the administrator just added.
#[derive(Debug, Clone)]
pub struct NewSigner {
    pub signer_id: String,
    /// The PIN the platform issued, when the administrator set none.
    pub initial_pin: Option<String>,
}

/// An e-licence as the holder sees it (conditions and note) or as the public check shows it
/// (without them).
#[derive(Debug, Clone)]
pub struct LicenceView {
    pub number: String,
    pub kind: String,
    pub holder_brn: String,
    pub holder_name: String,
    pub premises: String,
    pub status: String,
    pub conditions: Option<Vec<String>>,
    pub confidential_note: Option<String>,
}

/// A signed document's description, and its text when the call returns it.
#[derive(Debug, Clone)]
pub struct Doc {
    pub reference: String,
    pub title: String,
    pub signer_id: String,
    pub signature: String,
    pub body: Option<String>,
    /// The signing company's registration number, where the answer names it.
    pub company_brn: Option<String>,
}

/// A share link for a counterparty.
#[derive(Debug, Clone)]
pub struct ShareLink {
    /// The JSON form of the link.
    pub api: String,
    /// The page a person opens.
    pub page: String,
    pub kid: String,
    pub expires: u64,
    pub mac: String,
}

/// What the public verification says.
#[derive(Debug, Clone)]
pub struct Verification {
    pub valid: bool,
    pub brn: Option<String>,
    pub key_active: Option<bool>,
    pub reference: Option<String>,
}

/// One session with the service.
pub struct Client {
    http: Http,
}

/// A feature's name in English and Chinese, for the team's messages.
pub type Feature = (&'static str, &'static str);

/// The public message for a feature that answered wrongly: "login does not work / 登入故障".
pub fn broken(feature: Feature) -> String {
    format!("{} does not work / {}故障", feature.0, feature.1)
}

fn wrong(feature: Feature, what: impl Into<String>) -> Failure {
    Failure::mumble(broken(feature)).with_private(what.into())
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 { format!("{}…", &s[..s.floor_char_boundary(300)]) } else { s }
}

fn str_field(v: &Value, key: &str, feature: Feature) -> Outcome<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| wrong(feature, format!("no string {key:?} in {}", short(v))))
}

fn opt_str(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn strings(v: &Value, feature: Feature) -> Outcome<Vec<String>> {
    v.as_array()
        .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
        .ok_or_else(|| wrong(feature, format!("not a list of strings: {}", short(v))))
}

fn licence_view(v: &Value, feature: Feature) -> Outcome<LicenceView> {
    let holder = v.get("holder").ok_or_else(|| wrong(feature, format!("no holder in {}", short(v))))?;
    Ok(LicenceView {
        number: str_field(v, "number", feature)?,
        kind: str_field(v, "type", feature)?,
        holder_brn: str_field(holder, "brn", feature)?,
        holder_name: str_field(holder, "name", feature)?,
        premises: str_field(v, "premises", feature)?,
        status: str_field(v, "status", feature)?,
        conditions: match v.get("conditions") {
            Some(c) => Some(strings(c, feature)?),
            None => None,
        },
        confidential_note: opt_str(v, "confidential_note"),
    })
}

fn doc(v: &Value, feature: Feature) -> Outcome<Doc> {
    Ok(Doc {
        reference: str_field(v, "reference", feature)?,
        title: str_field(v, "title", feature)?,
        signer_id: str_field(v, "signer_id", feature)?,
        signature: str_field(v, "signature", feature)?,
        body: opt_str(v, "body"),
        company_brn: v.get("company").and_then(|c| opt_str(c, "brn")),
    })
}

fn list<'a>(v: &'a Value, key: &str, feature: Feature) -> Outcome<&'a Vec<Value>> {
    v.get(key).and_then(Value::as_array).ok_or_else(|| wrong(feature, format!("no {key:?} list in {}", short(v))))
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

impl Client {
    /// A fresh session (no cookies) with the target.
    pub fn new(ctx: &Ctx) -> Client {
        Client { http: Http::new(ctx, ctx.port()) }
    }

    fn expect(&self, response: Response, status: u16, feature: Feature) -> Outcome<Response> {
        response.expect_status(status).map_err(|f| f.context(broken(feature)))
    }

    /// Registers `company`; its business registration number.
    pub fn register(&mut self, company: &Company) -> Outcome<String> {
        const FEATURE: Feature = ("company registration", "公司登記");
        let body = json!({"name": company.name, "name_zh": company.name_zh, "password": company.password});
        let response = self.http.post_json("/api/companies", &body)?;
        let v = self.expect(response, 201, FEATURE)?.json()?;
        let brn = str_field(&v, "brn", FEATURE)?;
        if str_field(&v, "name", FEATURE)? != company.name || brn.len() != 8 || !brn.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(wrong(FEATURE, format!("registered {:?}, got {}", company.name, short(&v))));
        }
        Ok(brn)
    }

    /// Logs in as an administrator (BRN and password) or a signer (signer ID and PIN).
    pub fn login(&mut self, user_id: &str, password: &str) -> Outcome<Login> {
        const FEATURE: Feature = ("login", "登入");
        let response = self.http.post_json("/api/login", &json!({"user_id": user_id, "password": password}))?;
        if response.status == 401 {
            return Ok(Login::Rejected);
        }
        let v = self.expect(response, 200, FEATURE)?.json()?;
        if self.http.cookie("session").is_none() {
            return Err(wrong(FEATURE, "login answered 200 but set no session cookie"));
        }
        if str_field(&v, "user_id", FEATURE)? != user_id {
            return Err(wrong(FEATURE, format!("logged in as {user_id}, got {}", short(&v))));
        }
        Ok(Login::In)
    }

    /// Logs out.
    pub fn logout(&mut self) -> Outcome<()> {
        let response = self.http.post_json("/api/logout", &json!({}))?;
        self.expect(response, 200, ("logout", "登出"))?;
        Ok(())
    }

    /// Who is logged in; `None` when nobody is (401).
    pub fn me(&mut self) -> Outcome<Option<Me>> {
        const FEATURE: Feature = ("the account page", "帳戶頁");
        let response = self.http.get("/api/me")?;
        if response.status == 401 {
            return Ok(None);
        }
        let v = self.expect(response, 200, FEATURE)?.json()?;
        let company = v.get("company").ok_or_else(|| wrong(FEATURE, format!("no company in {}", short(&v))))?;
        Ok(Some(Me {
            role: str_field(&v, "role", FEATURE)?,
            user_id: str_field(&v, "user_id", FEATURE)?,
            brn: str_field(company, "brn", FEATURE)?,
        }))
    }

    /// Adds an authorised signer (as the administrator), with a PIN or with none.
    pub fn add_signer(&mut self, name: &str, title: &str, pin: Option<&str>) -> Outcome<NewSigner> {
        const FEATURE: Feature = ("adding an authorised signer", "新增授權簽署人");
        let mut body = json!({"name": name, "title": title});
        if let Some(pin) = pin {
            body["pin"] = json!(pin);
        }
        let response = self.http.post_json("/api/signers", &body)?;
        let v = self.expect(response, 201, FEATURE)?.json()?;
        let initial_pin = opt_str(&v, "initial_pin");
        match (&initial_pin, pin) {
            (Some(p), None) if (6..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {}
            (None, Some(_)) => {}
            _ => return Err(wrong(FEATURE, format!("pin set: {}, got {}", pin.is_some(), short(&v)))),
        }
        Ok(NewSigner { signer_id: str_field(&v, "signer_id", FEATURE)?, initial_pin })
    }

    /// The company's authorised signers: (signer ID, name).
    pub fn signers(&mut self) -> Outcome<Vec<(String, String)>> {
        const FEATURE: Feature = ("the list of authorised signers", "授權簽署人名單");
        let response = self.http.get("/api/signers")?;
        let v = self.expect(response, 200, FEATURE)?.json()?;
        list(&v, "signers", FEATURE)?
            .iter()
            .map(|s| Ok((str_field(s, "signer_id", FEATURE)?, str_field(s, "name", FEATURE)?)))
            .collect()
    }

    /// Revokes a signer (as the administrator).
    pub fn revoke(&mut self, signer_id: &str) -> Outcome<()> {
        let response = self.http.request("DELETE", &format!("/api/signers/{signer_id}"), &[], &[])?;
        self.expect(response, 200, ("revoking an authorised signer", "撤銷授權簽署人"))?;
        Ok(())
    }

    /// Changes the logged-in signer's PIN.
    pub fn change_pin(&mut self, old: &str, new: &str) -> Outcome<()> {
        let response = self.http.post_json("/api/pin", &json!({"old_pin": old, "new_pin": new}))?;
        self.expect(response, 200, ("changing the signing PIN", "更改簽署密碼"))?;
        Ok(())
    }

    /// Applies for `licence` (as the administrator); the issued licence.
    pub fn issue_licence(&mut self, licence: &Licence) -> Outcome<LicenceView> {
        const FEATURE: Feature = ("e-licence issue", "簽發電子牌照");
        let body = json!({
            "type": licence.kind,
            "premises": licence.premises,
            "conditions": licence.conditions,
            "confidential_note": licence.confidential_note,
            "months": licence.months,
        });
        let response = self.http.post_json("/api/licences", &body)?;
        let got = licence_view(&self.expect(response, 201, FEATURE)?.json()?, FEATURE)?;
        if got.kind != licence.kind
            || got.premises != licence.premises
            || got.conditions.as_ref() != Some(&licence.conditions)
            || got.confidential_note.as_deref() != Some(licence.confidential_note.as_str())
            || got.status != "valid"
        {
            return Err(wrong(FEATURE, format!("applied for {licence:?}, got {got:?}")));
        }
        Ok(got)
    }

    /// The company's e-licences.
    pub fn licences(&mut self) -> Outcome<Vec<LicenceView>> {
        const FEATURE: Feature = ("the list of e-licences", "電子牌照名單");
        let response = self.http.get("/api/licences?limit=100")?;
        let v = self.expect(response, 200, FEATURE)?.json()?;
        list(&v, "licences", FEATURE)?.iter().map(|l| licence_view(l, FEATURE)).collect()
    }

    /// One of the company's e-licences; `None` on 404.
    pub fn licence(&mut self, number: &str) -> Outcome<Option<LicenceView>> {
        const FEATURE: Feature = ("the e-licence page", "電子牌照頁");
        let response = self.http.get(&format!("/api/licences/{number}"))?;
        if response.status == 404 {
            return Ok(None);
        }
        Ok(Some(licence_view(&self.expect(response, 200, FEATURE)?.json()?, FEATURE)?))
    }

    /// The public licence check; `None` on 404.
    pub fn licence_check(&mut self, number: &str) -> Outcome<Option<LicenceView>> {
        const FEATURE: Feature = ("the public licence check", "公開牌照查核");
        let response = self.http.get(&format!("/api/licences/{number}/check"))?;
        if response.status == 404 {
            return Ok(None);
        }
        Ok(Some(licence_view(&self.expect(response, 200, FEATURE)?.json()?, FEATURE)?))
    }

    /// A licence's certificate (text); `None` on 404.
    pub fn certificate(&mut self, number: &str) -> Outcome<Option<String>> {
        let response = self.http.get(&format!("/api/licences/{number}/certificate"))?;
        if response.status == 404 {
            return Ok(None);
        }
        Ok(Some(self.expect(response, 200, ("certificate download", "下載證書"))?.text()?.to_owned()))
    }

    /// A company's public profile.
    pub fn company(&mut self, brn: &str) -> Outcome<Value> {
        let response = self.http.get(&format!("/api/companies/{brn}"))?;
        self.expect(response, 200, ("the public company profile", "公開公司資料"))?.json()
    }

    /// Signs `document` with `pin` (as a signer); `None` when the service says the PIN is
    /// wrong (403).
    pub fn sign(&mut self, document: &Document, pin: &str) -> Outcome<Option<Doc>> {
        const FEATURE: Feature = ("e-signing", "電子簽署");
        let body = json!({"title": document.title, "body": document.body, "pin": pin});
        let response = self.http.post_json("/api/documents", &body)?;
        if response.status == 403 {
            return Ok(None);
        }
        let got = doc(&self.expect(response, 201, FEATURE)?.json()?, FEATURE)?;
        if got.title != document.title || !got.signature.contains('.') {
            return Err(wrong(FEATURE, format!("signed {:?}, got {got:?}", document.title)));
        }
        Ok(Some(got))
    }

    /// The signed documents the user may see.
    pub fn documents(&mut self) -> Outcome<Vec<Doc>> {
        const FEATURE: Feature = ("the list of signed documents", "已簽署文件名單");
        let response = self.http.get("/api/documents?limit=100")?;
        let v = self.expect(response, 200, FEATURE)?.json()?;
        list(&v, "documents", FEATURE)?.iter().map(|d| doc(d, FEATURE)).collect()
    }

    /// One signed document with its text; `None` on 404.
    pub fn document(&mut self, reference: &str) -> Outcome<Option<Doc>> {
        const FEATURE: Feature = ("the signed document page", "已簽署文件頁");
        let response = self.http.get(&format!("/api/documents/{reference}"))?;
        if response.status == 404 {
            return Ok(None);
        }
        Ok(Some(doc(&self.expect(response, 200, FEATURE)?.json()?, FEATURE)?))
    }

    /// Makes a share link for a counterparty.
    pub fn share(&mut self, reference: &str, days: u64) -> Outcome<ShareLink> {
        const FEATURE: Feature = ("sharing a signed document", "分享已簽署文件");
        let response = self.http.post_json(&format!("/api/documents/{reference}/share"), &json!({"days": days}))?;
        let v = self.expect(response, 201, FEATURE)?.json()?;
        let link = ShareLink {
            api: str_field(&v, "api", FEATURE)?,
            page: str_field(&v, "url", FEATURE)?,
            kid: str_field(&v, "kid", FEATURE)?,
            expires: v.get("expires").and_then(Value::as_u64).ok_or_else(|| wrong(FEATURE, short(&v)))?,
            mac: str_field(&v, "mac", FEATURE)?,
        };
        if !link.api.starts_with(&format!("/api/shared/{reference}?"))
            || !link.page.starts_with(&format!("/shared/{reference}?"))
        {
            return Err(wrong(FEATURE, format!("links for {reference}: {}", short(&v))));
        }
        Ok(link)
    }

    /// Opens a shared document's JSON link; `None` when the service refuses the link (403).
    pub fn shared(&mut self, path: &str) -> Outcome<Option<Doc>> {
        const FEATURE: Feature = ("opening a shared document", "開啟分享文件");
        let response = self.http.get(path)?;
        if response.status == 403 {
            return Ok(None);
        }
        Ok(Some(doc(&self.expect(response, 200, FEATURE)?.json()?, FEATURE)?))
    }

    /// The raw answer to a path (the exploit reads any status).
    pub fn raw(&mut self, path: &str) -> Outcome<Response> {
        self.http.get(path)
    }

    /// The public signature verification.
    pub fn verify(&mut self, content: &str, signature: &str) -> Outcome<Verification> {
        const FEATURE: Feature = ("signature verification", "核實簽署");
        let response = self.http.post_json("/api/verify", &json!({"content": content, "signature": signature}))?;
        let v = self.expect(response, 200, FEATURE)?.json()?;
        let valid = v.get("valid").and_then(Value::as_bool).ok_or_else(|| wrong(FEATURE, short(&v)))?;
        Ok(Verification {
            valid,
            brn: v.get("company").and_then(|c| opt_str(c, "brn")),
            key_active: v.get("key").and_then(|k| k.get("active")).and_then(Value::as_bool),
            reference: v.get("document").and_then(|d| opt_str(d, "reference")),
        })
    }

    /// The verification form, as a person uses it; the result page.
    pub fn verify_form(&mut self, content: &str, signature: &str, lang: &str) -> Outcome<String> {
        let response =
            self.http.post_form(&format!("/verify?lang={lang}"), &[("content", content), ("signature", signature)])?;
        Ok(self.expect(response, 200, ("the verification page", "核實頁"))?.text()?.to_owned())
    }

    /// Rotates the company's signing key (as the administrator): (new key id, previous).
    pub fn rotate_key(&mut self) -> Outcome<(String, String)> {
        const FEATURE: Feature = ("signing key rotation", "更換簽署密鑰");
        let response = self.http.post_json("/api/keys/rotate", &json!({}))?;
        let v = self.expect(response, 201, FEATURE)?.json()?;
        Ok((str_field(&v, "kid", FEATURE)?, str_field(&v, "previous", FEATURE)?))
    }

    /// A page's HTML, which must answer 200.
    pub fn page(&mut self, path: &str, feature: Feature) -> Outcome<String> {
        let response = self.http.get(path)?;
        Ok(self.expect(response, 200, feature)?.text()?.to_owned())
    }

    /// A page's status and HTML, whatever the status.
    pub fn page_any(&mut self, path: &str) -> Outcome<(u16, String)> {
        let response = self.http.get(path)?;
        let text = response.text()?.to_owned();
        Ok((response.status, text))
    }
}

#[cfg(test)]
mod tests {
    use super::query_encode;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(query_encode("TSD-1|17 a&b"), "TSD-1%7C17%20a%26b");
    }
}
