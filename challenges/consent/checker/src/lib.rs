//! The checker of the DataBridge Consent Gateway (數據橋授權交換閘).
//!
//! - `check` plays a holder department, a requesting department and a citizen: both
//!   departments register and authenticate (HTTP Basic or a bearer token), the holder
//!   deposits records, the requester asks for consent, the citizen reads the request on the
//!   API or the grant page and grants it, the requester fetches the record (the newest, and a
//!   chosen older one) and is refused a record outside the consent's scope, the citizen reads
//!   the audit trail and the consent list and may revoke, after which fetching is refused.
//!   Which features it touches, in what order and with what data, comes from the action's seed.
//! - Flag store 0 is a record a holder department keeps about a citizen (flag id: the record
//!   number); store 1 is a requesting department's confidential case note on a consent request
//!   (flag id: the department's client_id). The state handed to `get` is the owners'
//!   credentials.
//! - `exploit` is the organisers' reference attack: store 0 asks a citizen of its own for
//!   consent to the victim record's holder and type, then names the victim record in the
//!   exchange, whose scope check forgets whose record it is; store 1 logs in as the sandbox
//!   client `demo-dept` with its documented secret and reads the department's requests through
//!   the service desk's ops API.

mod data;
mod gateway;

use gongfang_checker_sdk::{Checker, Ctx, Failure, Outcome, Planted, Rng, bilingual, flags, log};
use serde_json::{Value, json};

use crate::gateway::{Asked, Auth, Browser, ConsentView, Credentials, Dept, Login, RecordView, broken};

/// The service's checker.
pub struct Consent;

/// The stores `put` and `get` know.
const STORE_RECORD: u8 = 0;
const STORE_CASE_NOTE: u8 = 1;

/// The sandbox client the API guide documents (vulnerability A).
const DEMO_CLIENT: &str = "demo-dept";
const DEMO_SECRET: &str = "databridge-demo";

/// Registers a fresh citizen and logs them in, through the API or the pages, retrying a few
/// names when one is taken.
fn new_citizen(ctx: &Ctx, rng: &mut Rng, pages: bool) -> Outcome<(Browser, data::Citizen)> {
    let mut browser = Browser::new(ctx);
    for attempt in 0..4 {
        let citizen = data::citizen(rng, attempt);
        let fresh = if pages { browser.register_form(&citizen)? } else { browser.register(&citizen)? };
        if !fresh {
            log!("user name {} is taken; trying another", citizen.username);
            continue;
        }
        let login = if pages {
            browser.login_form(&citizen.username, &citizen.password, "/consents")?
        } else {
            browser.login(&citizen.username, &citizen.password)?
        };
        return match login {
            Login::In => Ok((browser, citizen)),
            Login::Rejected => Err(Failure::mumble("Login failed / 登入失敗")
                .with_private(format!("{} was just registered but cannot log in", citizen.username))),
        };
    }
    Err(broken(gateway::REGISTER, "four fresh user names in a row were taken"))
}

/// A department that registered a moment ago; one the gateway does not know is `mumble`.
fn connect(ctx: &Ctx, creds: &Credentials, auth: Auth) -> Outcome<Dept> {
    match Dept::connect(ctx, creds, auth)? {
        Ok(dept) => Ok(dept),
        Err(_) => Err(Failure::mumble("Client authentication failed / 用戶端驗證失敗")
            .with_private(format!("{} was just registered but {auth:?} is refused", creds.client_id))),
    }
}

/// The owner of a planted flag; one the gateway no longer knows lost the flag.
fn connect_owner(ctx: &Ctx, creds: &Credentials, auth: Auth) -> Outcome<Dept> {
    match Dept::connect(ctx, creds, auth)? {
        Ok(dept) => Ok(dept),
        Err(_) => Err(Failure::corrupt("A flag is missing: its department is gone / 旗幟遺失：部門帳戶已不存在")
            .with_private(format!("{} cannot authenticate any more ({auth:?})", creds.client_id))),
    }
}

fn state(fields: Value) -> Vec<u8> {
    serde_json::to_vec(&fields).expect("a JSON value always serialises")
}

fn read_state(state: &[u8]) -> Value {
    // The state is what this checker's own `put` returned; anything else is a platform bug.
    serde_json::from_slice(state).unwrap_or_else(|e| panic!("put's state is not the JSON it wrote: {e}"))
}

fn state_str<'a>(state: &'a Value, key: &str) -> &'a str {
    state.get(key).and_then(Value::as_str).unwrap_or_else(|| panic!("put's state has no {key:?}"))
}

fn creds_of(state: &Value) -> Credentials {
    Credentials {
        client_id: state_str(state, "client_id").to_owned(),
        client_secret: state_str(state, "client_secret").to_owned(),
    }
}

/// Fails with `mumble` unless `got` is `want` as deposited, with the id it was given.
fn expect_record(got: &RecordView, id: &str, want: &data::Record, what: &str) -> Outcome<()> {
    if got.id == id && got.same_as(want) {
        Ok(())
    } else {
        Err(broken(gateway::EXCHANGE, format!("{what}: wanted {id} {want:?}, got {got:?}")))
    }
}

/// The citizen finds the request on the API or on the pages, and it reads as filed.
fn citizen_sees_request(
    rng: &mut Rng,
    citizen: &mut Browser,
    id: &str,
    request: &data::Request,
    (requester, holder): (&str, &str),
    names: (&str, &str),
) -> Outcome<()> {
    if rng.range(0, 2) == 0 {
        let asked: Vec<Asked> = citizen.asked()?;
        match asked.iter().find(|q| q.id == id) {
            Some(q)
                if q.requester == requester
                    && q.holder == holder
                    && q.kind == request.kind
                    && q.status == "pending"
                    && (q.purpose == request.purpose || q.purpose == request.purpose_zh) => {}
            other => return Err(broken(gateway::REQUEST, format!("request {id} reads {other:?} to its citizen"))),
        }
    } else {
        let list = citizen.page("/consents", gateway::CONSENTS)?;
        if !list.contains(&format!("/grant/{id}")) {
            return Err(broken(gateway::CONSENTS, format!("no link to the grant page of {id}")));
        }
        let zh = rng.range(0, 2) == 0;
        let page = citizen.page(&format!("/grant/{id}{}", if zh { "?lang=zh-HK" } else { "" }), gateway::GRANT_PAGE)?;
        let purpose = if zh && !request.purpose_zh.is_empty() { &request.purpose_zh } else { &request.purpose };
        let (name, name_zh) = names;
        let name = if zh && !name_zh.is_empty() { name_zh } else { name };
        if !page.contains(&data::html_escape(purpose)) || !page.contains(&data::html_escape(name)) {
            return Err(broken(gateway::GRANT_PAGE, format!("the grant page of {id} misses {purpose:?} or {name:?}")));
        }
        if zh {
            // The citizen switched language on this page; switch back for the rest.
            citizen.page("/?lang=en", gateway::HOME)?;
        }
    }
    Ok(())
}

/// A requester for `requester` with the checker's data; its credentials.
fn register_requester(
    ctx: &Ctx,
    rng: &mut Rng,
    template: &data::Requester,
) -> Outcome<(Credentials, data::Department)> {
    let department = data::requester(rng, template);
    Ok((gateway::register_department(ctx, &department)?, department))
}

/// The actions themselves; [`Checker`] gives their failures bilingual messages.
impl Consent {
    fn run_check(ctx: &Ctx) -> Outcome<()> {
        let mut rng = ctx.rng(1);
        let mut visitor = Browser::new(ctx);
        let home = visitor.page(if rng.range(0, 2) == 0 { "/" } else { "/?lang=zh-HK" }, gateway::HOME)?;
        if !home.contains("DataBridge Consent Gateway") || !home.contains("數據橋授權交換閘") {
            return Err(broken(gateway::HOME, "the home page is not the gateway's"));
        }
        if rng.range(0, 10) < 3 {
            let docs = visitor.page("/docs", gateway::DOCS)?;
            if !docs.contains("/api/exchange") {
                return Err(broken(gateway::DOCS, "the API guide does not describe /api/exchange"));
            }
        }

        // Two departments and a citizen.
        let holder_t = rng.pick(data::HOLDERS);
        let requester_t = rng.pick(data::REQUESTERS);
        let both = rng.range(0, 4) == 0;
        let holder_creds = gateway::register_department(ctx, &data::holder(&mut rng, holder_t, both))?;
        let (requester_creds, requester_dept) = register_requester(ctx, &mut rng, requester_t)?;
        let pages = rng.range(0, 3) == 0;
        let (mut citizen, account) = new_citizen(ctx, &mut rng, pages)?;
        match citizen.me()? {
            Some((username, name)) if username == account.username && name == account.name => {}
            other => {
                return Err(broken(
                    gateway::ACCOUNT,
                    format!("logged in as {}, /api/me says {other:?}", account.username),
                ));
            }
        }
        let username = account.username.as_str();

        // The holder deposits the record to share, maybe an older one of the same type and
        // one of another type.
        let mut holder = connect(ctx, &holder_creds, Auth::pick(&mut rng))?;
        let kind = *rng.pick(holder_t.types);
        let older = if rng.range(0, 2) == 0 {
            let r = data::record(&mut rng, kind, holder_t.code);
            Some((holder.deposit(username, &r)?.id, r))
        } else {
            None
        };
        let current = data::record(&mut rng, kind, holder_t.code);
        let current_id = holder.deposit(username, &current)?.id;
        let other = if rng.range(0, 2) == 0 {
            let other_kind = data::other_kind(&mut rng, holder_t, kind);
            let r = data::record(&mut rng, &other_kind, holder_t.code);
            Some((holder.deposit(username, &r)?.id, r))
        } else {
            None
        };
        log!("{} deposited {current_id} ({kind}) for {username}, older {older:?}, other {other:?}", holder.id);

        if rng.range(0, 10) < 4 {
            match visitor.verify(&current_id)? {
                Some((h, k)) if h == holder.id && k == kind => {}
                other => return Err(broken(gateway::VERIFY, format!("{current_id} verifies as {other:?}"))),
            }
        }
        if rng.range(0, 10) < 3 {
            let held = holder.records(username)?;
            let ids = [Some(&current_id), older.as_ref().map(|o| &o.0), other.as_ref().map(|o| &o.0)];
            if let Some(missing) = ids.into_iter().flatten().find(|id| !held.iter().any(|r| &r.id == *id)) {
                return Err(broken(gateway::RECORDS, format!("{missing} is not among {username}'s records")));
            }
        }
        if rng.range(0, 10) < 3 && !visitor.directory("holder")?.contains(&holder.id) {
            return Err(broken(gateway::DIRECTORY, format!("holder {} is not listed", holder.id)));
        }

        // The requester asks; sometimes a second request the citizen declines.
        let mut requester = connect(ctx, &requester_creds, Auth::pick(&mut rng))?;
        if rng.range(0, 4) == 0 && requester.whoami()?.as_deref() != Some(requester.id.as_str()) {
            return Err(broken(gateway::TOKEN, format!("{} is not recognised as itself", requester.id)));
        }
        let request = data::request(&mut rng, requester_t, kind);
        let filed = requester.file(username, &holder.id, &request)?;
        let declined = if rng.range(0, 3) == 0 {
            let other_kind = data::other_kind(&mut rng, holder_t, kind);
            let second = data::request(&mut rng, requester_t, &other_kind);
            Some(requester.file(username, &holder.id, &second)?.id)
        } else {
            None
        };
        citizen_sees_request(
            &mut rng,
            &mut citizen,
            &filed.id,
            &request,
            (&requester.id, &holder.id),
            (&requester_dept.name, &requester_dept.name_zh),
        )?;

        let days = if rng.range(0, 2) == 0 { request.days } else { rng.range(1, request.days + 1) };
        let by_form = rng.range(0, 2) == 0;
        if by_form {
            citizen.decide_form(&filed.id, true, days)?;
        } else {
            citizen.approve(&filed.id, days)?;
        }
        if let Some(id) = &declined {
            if rng.range(0, 2) == 0 { citizen.decline(id)? } else { citizen.decide_form(id, false, 1)? }
        }
        let consent = match requester.request(&filed.id)? {
            Some(q) if q.status == "approved" && q.consent.is_some() && q.case_note == request.case_note => {
                q.consent.unwrap_or_default()
            }
            other => {
                return Err(broken(
                    gateway::DECIDE,
                    format!("granted {} (form: {by_form}), it reads {other:?}", filed.id),
                ));
            }
        };
        log!("{username} granted {consent} for {days} days");

        // The exchange: the newest record, a chosen older one, and one outside the scope.
        let got = requester.exchange(&consent, None)?;
        expect_record(&got, &current_id, &current, "the newest record")?;
        if let Some((id, r)) = &older {
            let got = requester.exchange(&consent, Some(id))?;
            expect_record(&got, id, r, "an older record chosen by number")?;
        }
        if let Some((id, _)) = &other {
            let response = requester.exchange_raw(&consent, Some(id))?;
            if response.status == 200 {
                return Err(Failure::mumble("Data exchange ignores the consent's scope / 數據交換無視授權範圍")
                    .with_private(format!("{id} of another type came back under {consent}")));
            }
            if response.status != 403 && response.status != 404 {
                return Err(broken(
                    gateway::EXCHANGE,
                    format!("a record outside the scope answered {}", response.status),
                ));
            }
        }

        // What the citizen and the requester see afterwards, in a seeded order.
        let mut steps: Vec<u8> = vec![0, 1, 2, 3, 4];
        for i in (1..steps.len()).rev() {
            steps.swap(i, rng.range(0, i as u64 + 1) as usize);
        }
        for step in steps {
            let wanted = rng.range(0, 10) < 6;
            match step {
                0 if wanted => {
                    if rng.range(0, 2) == 0 {
                        let trail = citizen.audit()?;
                        let fetched = trail.iter().any(|e| {
                            e.event == "fetch"
                                && e.requester == requester.id
                                && e.consent.as_deref() == Some(consent.as_str())
                                && e.record.as_deref() == Some(current_id.as_str())
                        });
                        if !fetched {
                            return Err(broken(gateway::AUDIT, format!("no fetch of {current_id} under {consent}")));
                        }
                    } else if !citizen.page("/audit", gateway::AUDIT)?.contains(&current_id) {
                        return Err(broken(gateway::AUDIT, format!("the audit page does not show {current_id}")));
                    }
                }
                1 if wanted => {
                    let listed = citizen.consents()?;
                    let ours = |c: &&ConsentView| {
                        c.id == consent && c.requester == requester.id && c.holder == holder.id && c.kind == kind
                    };
                    if !listed.iter().filter(ours).any(|c| c.status == "active") {
                        return Err(broken(gateway::CONSENTS, format!("{consent} is not listed as active")));
                    }
                }
                2 if wanted => {
                    let requests = requester.requests()?;
                    if !requests.iter().any(|q| q.id == filed.id && q.case_note == request.case_note) {
                        return Err(broken(
                            gateway::REQUEST,
                            format!("{} is not among the requester's requests", filed.id),
                        ));
                    }
                    if let Some(id) = &declined
                        && !requests.iter().any(|q| &q.id == id && q.status == "declined")
                    {
                        return Err(broken(gateway::DECIDE, format!("declined request {id} does not read declined")));
                    }
                }
                3 if wanted => {
                    let granted = requester.consents()?;
                    if !granted.iter().any(|c| c.id == consent && c.status == "active") {
                        return Err(broken(
                            gateway::CONSENTS,
                            format!("{consent} is not among the requester's consents"),
                        ));
                    }
                }
                4 if wanted => {
                    if rng.range(0, 2) == 0 {
                        if !citizen.records()?.iter().any(|r| r.id == current_id && r.same_as(&current)) {
                            return Err(broken(
                                gateway::MY_RECORDS,
                                format!("{current_id} is not among the citizen's"),
                            ));
                        }
                    } else if !citizen.page("/records", gateway::MY_RECORDS)?.contains(&current_id) {
                        return Err(broken(
                            gateway::MY_RECORDS,
                            format!("the records page does not show {current_id}"),
                        ));
                    }
                }
                _ => {}
            }
        }

        if rng.range(0, 2) == 0 {
            if rng.range(0, 2) == 0 {
                citizen.revoke(&consent)?
            } else {
                citizen.revoke_form(&consent)?
            }
            let response = requester.exchange_raw(&consent, None)?;
            if response.status != 403 {
                return Err(Failure::mumble("Revoked consent still works / 已撤回的授權仍然有效")
                    .with_private(format!("fetching under revoked {consent}: {}", response.status)));
            }
            if !citizen.consents()?.iter().any(|c| c.id == consent && c.status == "revoked") {
                return Err(broken(gateway::REVOKE, format!("{consent} does not read revoked")));
            }
        }
        if rng.range(0, 10) < 4 {
            if rng.range(0, 2) == 0 {
                citizen.logout()?
            } else {
                citizen.logout_form()?
            }
            if citizen.me()?.is_some() {
                return Err(broken(gateway::LOGOUT, "the session lives on after logging out"));
            }
        }
        Ok(())
    }

    fn run_put(ctx: &Ctx, store: u8, flag: &str) -> Outcome<Planted> {
        let mut rng = ctx.rng(2);
        match store {
            STORE_RECORD => {
                let holder_t = rng.pick(data::HOLDERS);
                let both = rng.range(0, 4) == 0;
                let creds = gateway::register_department(ctx, &data::holder(&mut rng, holder_t, both))?;
                let (_, citizen) = new_citizen(ctx, &mut rng, false)?;
                let mut holder = connect(ctx, &creds, Auth::pick(&mut rng))?;
                // The flag record among a few everyday ones, as a real register looks.
                for _ in 0..rng.range(0, 2) {
                    let kind = *rng.pick(data::RECORD_TYPES);
                    holder.deposit(&citizen.username, &data::record(&mut rng, kind, holder_t.code))?;
                }
                let kind = *rng.pick(holder_t.types);
                let id = holder.deposit(&citizen.username, &data::flag_record(&mut rng, kind, holder_t.code, flag))?.id;
                for _ in 0..rng.range(0, 2) {
                    let kind = *rng.pick(holder_t.types);
                    holder.deposit(&citizen.username, &data::record(&mut rng, kind, holder_t.code))?;
                }
                log!("{} planted the flag in {id} about {}", creds.client_id, citizen.username);
                Ok(Planted {
                    flag_id: id.clone(),
                    state: state(json!({
                        "client_id": creds.client_id,
                        "client_secret": creds.client_secret,
                        "username": citizen.username,
                        "password": citizen.password,
                        "record": id,
                    })),
                })
            }
            STORE_CASE_NOTE => {
                let holder_t = rng.pick(data::HOLDERS);
                let requester_t = rng.pick(data::REQUESTERS);
                let holder_creds = gateway::register_department(ctx, &data::holder(&mut rng, holder_t, false))?;
                let (creds, _) = register_requester(ctx, &mut rng, requester_t)?;
                let (mut citizen, account) = new_citizen(ctx, &mut rng, false)?;
                let mut requester = connect(ctx, &creds, Auth::pick(&mut rng))?;
                for _ in 0..rng.range(0, 2) {
                    let kind = *rng.pick(holder_t.types);
                    requester.file(
                        &account.username,
                        &holder_creds.client_id,
                        &data::request(&mut rng, requester_t, kind),
                    )?;
                }
                let kind = *rng.pick(holder_t.types);
                let request = data::flag_request(&mut rng, requester_t, kind, flag);
                let id = requester.file(&account.username, &holder_creds.client_id, &request)?.id;
                if rng.range(0, 3) == 0 {
                    citizen.approve(&id, request.days)?;
                }
                log!("{} planted the flag in the case note of {id}", creds.client_id);
                Ok(Planted {
                    flag_id: creds.client_id.clone(),
                    state: state(json!({
                        "client_id": creds.client_id,
                        "client_secret": creds.client_secret,
                        "request": id,
                    })),
                })
            }
            _ => unreachable!("the SDK only passes stores below FLAG_STORES"),
        }
    }

    fn run_get(ctx: &Ctx, store: u8, flag: &str, state: &[u8]) -> Outcome<()> {
        let state = read_state(state);
        let creds = creds_of(&state);
        let mut rng = ctx.rng(3);
        match store {
            STORE_RECORD => {
                let id = state_str(&state, "record");
                let (username, password) = (state_str(&state, "username"), state_str(&state, "password"));
                // The holder reads its register, or the citizen reads what is held about them.
                let found = match rng.range(0, 4) {
                    0 => connect_owner(ctx, &creds, Auth::pick(&mut rng))?.record(id)?.map(|r| r.all_text()),
                    1 => connect_owner(ctx, &creds, Auth::pick(&mut rng))?
                        .records(username)?
                        .into_iter()
                        .find(|r| r.id == id)
                        .map(|r| r.all_text()),
                    path => {
                        let mut citizen = Browser::new(ctx);
                        if citizen.login(username, password)? == Login::Rejected {
                            return Err(Failure::corrupt(
                                "A flag is missing: its citizen is gone / 旗幟遺失：市民帳戶已不存在",
                            )
                            .with_private(format!("{username} cannot log in any more")));
                        }
                        if path == 2 {
                            citizen.records()?.into_iter().find(|r| r.id == id).map(|r| r.all_text())
                        } else {
                            let page = citizen.page("/records", gateway::MY_RECORDS)?;
                            page.contains(id).then_some(page)
                        }
                    }
                };
                match found {
                    Some(text) if text.contains(flag) => Ok(()),
                    Some(_) => Err(Failure::corrupt("A flag is missing: a record was altered / 旗幟遺失：紀錄被改動")
                        .with_private(format!("{id} no longer holds the flag"))),
                    None => Err(Failure::corrupt("A flag is missing: a record is gone / 旗幟遺失：紀錄已不存在")
                        .with_private(format!("{id} is gone"))),
                }
            }
            STORE_CASE_NOTE => {
                let id = state_str(&state, "request");
                let mut requester = connect_owner(ctx, &creds, Auth::pick(&mut rng))?;
                let found = if rng.range(0, 2) == 0 {
                    requester.request(id)?
                } else {
                    requester.requests()?.into_iter().find(|q| q.id == id)
                };
                match found {
                    Some(q) if q.case_note.contains(flag) => Ok(()),
                    Some(_) => {
                        Err(Failure::corrupt("A flag is missing: a case note was altered / 旗幟遺失：個案備註被改動")
                            .with_private(format!("{id}'s case note no longer holds the flag")))
                    }
                    None => Err(Failure::corrupt(
                        "A flag is missing: a consent request is gone / 旗幟遺失：授權請求已不存在",
                    )
                    .with_private(format!("{id} is gone"))),
                }
            }
            _ => unreachable!("the SDK only passes stores below FLAG_STORES"),
        }
    }

    fn run_exploit(ctx: &Ctx, store: u8, flag_id: &str) -> Outcome<Vec<String>> {
        match store {
            STORE_RECORD => {
                // The exchange checks that a record named with `record=` has the consent's
                // holder and type, but not that it is the consenting citizen's.
                let mut rng = ctx.rng(4);
                let mut visitor = Browser::new(ctx);
                let Some((holder, kind)) = visitor.verify(flag_id)? else {
                    log!("record {flag_id} does not verify");
                    return Ok(Vec::new());
                };
                let requester_t = rng.pick(data::REQUESTERS);
                let (creds, _) = register_requester(ctx, &mut rng, requester_t)?;
                let (mut accomplice, account) = new_citizen(ctx, &mut rng, false)?;
                let mut attacker = connect(ctx, &creds, Auth::Basic)?;
                let request = data::request(&mut rng, requester_t, &kind);
                let filed = attacker.file(&account.username, &holder, &request)?;
                let consent = accomplice.approve(&filed.id, request.days)?;
                let response = attacker.exchange_raw(&consent.id, Some(flag_id))?;
                log!("fetching {flag_id} under our own {}: {}", consent.id, response.status);
                Ok(if response.status == 200 { flags::find(&response.body) } else { Vec::new() })
            }
            STORE_CASE_NOTE => {
                // The sandbox client is left enabled with the service desk's ops role.
                let demo = Credentials { client_id: DEMO_CLIENT.to_owned(), client_secret: DEMO_SECRET.to_owned() };
                let mut ops = match Dept::connect(ctx, &demo, Auth::Basic)? {
                    Ok(dept) => dept,
                    Err(_) => return Ok(Vec::new()),
                };
                let response = ops.ops_requests_raw(flag_id)?;
                log!("ops view of {flag_id}'s requests as {DEMO_CLIENT}: {}", response.status);
                Ok(if response.status == 200 { flags::find(&response.body) } else { Vec::new() })
            }
            _ => unreachable!("the SDK only passes stores below FLAG_STORES"),
        }
    }
}

impl Checker for Consent {
    const SERVICE: &'static str = "consent";
    const FLAG_STORES: u8 = 2;
    const HAS_EXPLOIT: bool = true;

    fn check(ctx: &Ctx) -> Outcome<()> {
        bilingual(Consent::run_check(ctx))
    }

    fn put(ctx: &Ctx, store: u8, flag: &str) -> Outcome<Planted> {
        bilingual(Consent::run_put(ctx, store, flag))
    }

    fn get(ctx: &Ctx, store: u8, flag: &str, state: &[u8]) -> Outcome<()> {
        bilingual(Consent::run_get(ctx, store, flag, state))
    }

    fn exploit(ctx: &Ctx, store: u8, flag_id: &str) -> Outcome<Vec<String>> {
        bilingual(Consent::run_exploit(ctx, store, flag_id))
    }
}

gongfang_checker_sdk::export_checker!(Consent);
