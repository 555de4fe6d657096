//! The OpenID Connect authorisation code flow as a relying service and its citizen live it:
//! the citizen consents on CityPass's page, the service's back end swaps the code for tokens,
//! checks the ID token's signature and claims, and reads the consented claims at userinfo.

use gongfang_checker_sdk::http::Response;
use gongfang_checker_sdk::{Failure, Outcome, log};
use serde_json::{Value, json};

use crate::citypass::{
    self, CityPass, Client, Feature, Item, basic_auth, broken, short, str_field, url_decode, url_encode, wrong,
};
use crate::crypto;

/// What the consent page's buttons led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The citizen allowed it: the authorisation code.
    Code(String),
    /// The citizen said no, and the service was told `access_denied`.
    Denied,
}

/// The authorisation request a relying service sends its citizen with.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub client: &'a Client,
    pub service_name: &'a str,
    pub scopes: &'a [String],
    pub state: &'a str,
    pub nonce: &'a str,
}

impl Request<'_> {
    fn scope(&self) -> String {
        self.scopes.join(" ")
    }

    fn query(&self) -> String {
        let mut fields = vec![
            ("response_type", "code".to_owned()),
            ("client_id", self.client.client_id.clone()),
            ("redirect_uri", self.client.redirect_uri.clone()),
            ("scope", self.scope()),
        ];
        if !self.state.is_empty() {
            fields.push(("state", self.state.to_owned()));
        }
        if !self.nonce.is_empty() {
            fields.push(("nonce", self.nonce.to_owned()));
        }
        fields.iter().map(|(k, v)| format!("{k}={}", url_encode(v))).collect::<Vec<_>>().join("&")
    }
}

/// The value of the hidden input `name` in an HTML form.
fn hidden_input(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].replace("&amp;", "&"))
}

/// The query parameters of a URL.
fn query_params(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The citizen, logged in on `session`, opens the authorisation link and answers the consent
/// page with `allow`.
pub fn consent(session: &mut CityPass, request: &Request, allow: bool) -> Outcome<Decision> {
    const FEATURE: Feature = ("the consent page", "授權同意頁面");
    let page = session.page(&format!("/oauth/authorize?{}", request.query()), FEATURE)?;
    if !page.contains(&crate::data::html_escape(request.service_name)) {
        return Err(wrong(FEATURE, format!("the page does not name the service {:?}", request.service_name)));
    }
    let csrf = hidden_input(&page, "csrf").ok_or_else(|| wrong(FEATURE, "the consent form has no csrf field"))?;
    let scope = request.scope();
    let decision = if allow { "allow" } else { "deny" };
    let fields = [
        ("client_id", request.client.client_id.as_str()),
        ("redirect_uri", request.client.redirect_uri.as_str()),
        ("scope", scope.as_str()),
        ("state", request.state),
        ("nonce", request.nonce),
        ("response_type", "code"),
        ("csrf", csrf.as_str()),
        ("decision", decision),
    ];
    let response = session.post_form("/oauth/authorize", &fields, &[])?;
    let response = response
        .expect_status(302)
        .map_err(|f| f.context(broken(("answering the consent page", "回覆授權同意頁面"))))?;
    let location = response.header("location").unwrap_or_default().to_owned();
    let expected_prefix = format!("{}?", request.client.redirect_uri);
    if !location.starts_with(&expected_prefix) {
        return Err(wrong(FEATURE, format!("redirected to {location:?}, not to {}", request.client.redirect_uri)));
    }
    let params = query_params(&location);
    if !request.state.is_empty() && param(&params, "state") != Some(request.state) {
        return Err(wrong(FEATURE, format!("the redirect {location:?} lost the state")));
    }
    match (allow, param(&params, "code"), param(&params, "error")) {
        (true, Some(code), None) if !code.is_empty() => Ok(Decision::Code(code.to_owned())),
        (false, None, Some("access_denied")) => Ok(Decision::Denied),
        _ => Err(wrong(FEATURE, format!("answering {decision} redirected to {location:?}"))),
    }
}

/// What the token endpoint gave a relying service.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub id_token: String,
}

/// The relying service's back end swaps `code` for tokens (HTTP Basic or form credentials).
pub fn exchange(backend: &mut CityPass, client: &Client, code: &str, basic: bool) -> Outcome<Response> {
    let mut fields =
        vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", client.redirect_uri.as_str())];
    if basic {
        let auth = basic_auth(&client.client_id, &client.secret);
        backend.post_form("/oauth/token", &fields, &[("Authorization", auth.as_str())])
    } else {
        fields.push(("client_id", client.client_id.as_str()));
        fields.push(("client_secret", client.secret.as_str()));
        backend.post_form("/oauth/token", &fields, &[])
    }
}

/// The tokens of a successful exchange.
pub fn tokens(response: Response) -> Outcome<Tokens> {
    const FEATURE: Feature = ("the token endpoint", "權杖端點");
    let v = response.expect_status(200).map_err(|f| f.context(broken(FEATURE)))?.json()?;
    let token_type = str_field(&v, "token_type", FEATURE)?;
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(wrong(FEATURE, format!("token_type {token_type:?}")));
    }
    Ok(Tokens { access_token: str_field(&v, "access_token", FEATURE)?, id_token: str_field(&v, "id_token", FEATURE)? })
}

/// Checks an ID token as a relying service must (OpenID Connect Core §3.1.3.7): HS256 under
/// the client secret, from `issuer`, about `sub`, for this client, with our nonce.
pub fn check_id_token(id_token: &str, client: &Client, issuer: &str, sub: &str, nonce: &str) -> Outcome<()> {
    const FEATURE: Feature = ("the ID token", "身份權杖 (ID token)");
    let bad = |what: String| Failure::mumble("The ID token is not valid / 身份權杖 (ID token) 無效").with_private(what);
    let parts: Vec<&str> = id_token.split('.').collect();
    let [head, body, sig] = parts.as_slice() else {
        return Err(bad(format!("{} parts", parts.len())));
    };
    let decode = |part: &str| -> Outcome<Value> {
        let bytes = crypto::base64url_decode(part).ok_or_else(|| bad(format!("{part:?} is not base64url")))?;
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))
    };
    let header = decode(head)?;
    let claims = decode(body)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(bad(format!("header {}", short(&header))));
    }
    let mac = crypto::hmac_sha256(client.secret.as_bytes(), format!("{head}.{body}").as_bytes());
    if crypto::base64url_decode(sig).as_deref() != Some(&mac[..]) {
        return Err(bad("the HS256 signature does not match the client secret".to_owned()));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == client.client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&client.client_id)),
        _ => false,
    };
    let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
    let iat = claims.get("iat").and_then(Value::as_u64).unwrap_or(u64::MAX);
    if str_field(&claims, "iss", FEATURE)? != issuer
        || str_field(&claims, "sub", FEATURE)? != sub
        || !aud_ok
        || exp <= iat
        || (!nonce.is_empty() && claims.get("nonce").and_then(Value::as_str) != Some(nonce))
    {
        return Err(bad(format!("claims {} (wanted iss {issuer}, sub {sub}, nonce {nonce})", short(&claims))));
    }
    Ok(())
}

/// Calls userinfo with `access_token`, in one of the ways RFC 6750 allows.
pub fn userinfo(backend: &mut CityPass, access_token: &str, how: u64) -> Outcome<Response> {
    let bearer = format!("Bearer {access_token}");
    match how {
        0 => backend.get_with("/oauth/userinfo", &[("Authorization", bearer.as_str())]),
        1 => backend.post_form("/oauth/userinfo", &[], &[("Authorization", bearer.as_str())]),
        _ => backend.post_form("/oauth/userinfo", &[("access_token", access_token)], &[]),
    }
}

/// What userinfo must show for a citizen, given the scopes they consented to.
pub struct Expected<'a> {
    pub sub: &'a str,
    pub name: &'a str,
    pub name_zh: &'a str,
    pub phone: &'a str,
    pub id_number: &'a str,
    /// Every item in the citizen's wallet; those of consented kinds must be shown, no others.
    pub wallet: &'a [Item],
}

/// Checks userinfo's claims: those the scopes allow, and nothing the citizen did not consent to.
pub fn check_claims(v: &Value, scopes: &[String], want: &Expected) -> Outcome<()> {
    const FEATURE: Feature = ("userinfo", "用戶資料端點 (userinfo)");
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let fail = |what: String| Err(wrong(FEATURE, what));
    if str_field(v, "sub", FEATURE)? != want.sub {
        return fail(format!("sub is not {}: {}", want.sub, short(v)));
    }
    for (scope, claim, value) in [
        ("profile", "name", want.name),
        ("profile", "name#zh-HK", want.name_zh),
        ("phone", "phone_number", want.phone),
        ("idno", "id_number", want.id_number),
    ] {
        match (has(scope), v.get(claim)) {
            (true, Some(Value::String(got))) if got == value => {}
            (true, got) => return fail(format!("{claim} is {got:?}, not {value:?}")),
            (false, None) => {}
            (false, Some(_)) => {
                return Err(Failure::mumble(
                    "Userinfo shares claims the citizen did not consent to / 用戶資料端點披露了市民未同意分享的資料",
                )
                .with_private(format!("{claim} without scope {scope}: {}", short(v))));
            }
        }
    }
    let kinds: Vec<&str> = scopes.iter().filter_map(|s| s.strip_prefix("wallet.")).collect();
    let mut wanted: Vec<u64> = want.wallet.iter().filter(|i| kinds.contains(&i.kind.as_str())).map(|i| i.id).collect();
    let shown = match v.get("wallet") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            items.iter().map(|i| citypass::item(i, FEATURE)).collect::<Outcome<Vec<Item>>>()?
        }
        Some(other) => return fail(format!("wallet is {}", short(other))),
    };
    for item in &shown {
        if !kinds.contains(&item.kind.as_str()) {
            return Err(Failure::mumble("Userinfo shares wallet items the citizen did not consent to / 用戶資料端點披露了市民未同意分享的錢包項目")
                .with_private(format!("item {} of kind {} with scopes {scopes:?}", item.id, item.kind)));
        }
        match want.wallet.iter().find(|w| w.id == item.id) {
            Some(w) if w == item => {}
            _ => return fail(format!("wallet item {} is not what the citizen stored: {item:?}", item.id)),
        }
    }
    let mut got: Vec<u64> = shown.iter().map(|i| i.id).collect();
    wanted.sort_unstable();
    got.sort_unstable();
    if wanted != got {
        return fail(format!("wallet items {got:?} shown, {wanted:?} consented to"));
    }
    log!(
        "userinfo showed {} claims and {} wallet items for {scopes:?}",
        v.as_object().map_or(0, |o| o.len()),
        got.len()
    );
    Ok(())
}

/// An unsigned (`alg: none`) access token that claims to be about `sub`: what the reference
/// exploit presents to userinfo.
pub fn unsigned_token(sub: &str, client_id: &str, scope: &str) -> String {
    let header = json!({"alg": "none", "typ": "at+jwt"});
    let claims = json!({
        "iss": "citypass",
        "sub": sub,
        "client_id": client_id,
        "scope": scope,
        "iat": 1_767_225_600u64,
        "exp": 4_102_444_800u64,
        "jti": "forged",
    });
    format!(
        "{}.{}.",
        crypto::base64url(header.to_string().as_bytes()),
        crypto::base64url(claims.to_string().as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hidden_inputs_and_redirects() {
        let page =
            r#"<input type="hidden" name="state" value="a&amp;b"><input type="hidden" name="csrf" value="x-Y_z">"#;
        assert_eq!(hidden_input(page, "csrf").as_deref(), Some("x-Y_z"));
        assert_eq!(hidden_input(page, "state").as_deref(), Some("a&b"));
        assert_eq!(hidden_input(page, "nonce"), None);
        let params = query_params("https://rp.example/cb?code=abc%2Fd&state=s+1");
        assert_eq!(param(&params, "code"), Some("abc/d"));
        assert_eq!(param(&params, "state"), Some("s 1"));
    }

    #[test]
    fn accepts_a_good_id_token_and_rejects_a_tampered_one() {
        let client = Client { client_id: "rp-1".into(), secret: "s3cret".into(), redirect_uri: String::new() };
        let head = crypto::base64url(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = crypto::base64url(br#"{"iss":"http://h:1","sub":"CP1","aud":"rp-1","iat":1,"exp":2,"nonce":"n"}"#);
        let sig = crypto::base64url(&crypto::hmac_sha256(b"s3cret", format!("{head}.{body}").as_bytes()));
        let token = format!("{head}.{body}.{sig}");
        assert!(check_id_token(&token, &client, "http://h:1", "CP1", "n").is_ok());
        assert!(check_id_token(&token, &client, "http://h:1", "CP2", "n").is_err());
        assert!(check_id_token(&format!("{head}.{body}.AAAA"), &client, "http://h:1", "CP1", "n").is_err());
    }
}
