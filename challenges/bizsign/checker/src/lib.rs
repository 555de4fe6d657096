//! The checker of TradeSeal Business Identity (商印通企業數碼身份), a company digital identity
//! and e-signing service.
//!
//! - `check` behaves like a company and the people around it: the administrator registers the
//!   company, adds authorised signers (choosing their PINs or taking the platform's), applies
//!   for e-licences and rotates the signing key; a signer logs in, changes the PIN, signs
//!   documents and shares them; strangers check licences, verify signatures and open share
//!   links. Which features it touches, in what order and with what data, comes from the seed.
//! - Flag store 0 is the confidential note of an e-licence (flag id: the licence number); store
//!   1 is the text of a signed tender submission (flag id: the document reference). The state
//!   handed to `get` is the administrator's (and for store 1 the signer's) credentials.
//! - `exploit` is the organisers' reference attack: store 0 logs in as a signer who still has
//!   the platform's initial PIN, 000000; store 1 opens the document through a share link whose
//!   MAC the attacker made with their own company's key, by signing "REFERENCE|EXPIRES".

mod client;
mod data;

use gongfang_checker_sdk::{Checker, Ctx, Failure, Outcome, Planted, Rng, bilingual, flags, log};
use serde_json::{Value, json};

use crate::client::{Client, Doc, Login, ShareLink, query_encode};
use crate::data::{Company, Document};

/// The service's checker.
pub struct BizSign;

/// The stores `put` and `get` know.
const STORE_LICENCE: u8 = 0;
const STORE_DOCUMENT: u8 = 1;

/// The PIN the vanilla service gives every signer whose administrator sets none.
const INITIAL_PIN: &str = "000000";

/// Registers a fresh company and logs its administrator in: (session, company, BRN).
fn new_company(ctx: &Ctx, rng: &mut Rng) -> Outcome<(Client, Company, String)> {
    let company = data::company(rng);
    let mut admin = Client::new(ctx);
    let brn = admin.register(&company)?;
    match admin.login(&brn, &company.password)? {
        Login::In => Ok((admin, company, brn)),
        Login::Rejected => Err(Failure::mumble("login does not work / 登入故障")
            .with_private(format!("company {brn} was just registered but its administrator cannot log in"))),
    }
}

/// Logs in an authorised signer who was just added or just changed their PIN.
fn signer_login(ctx: &Ctx, signer_id: &str, pin: &str) -> Outcome<Client> {
    let mut signer = Client::new(ctx);
    match signer.login(signer_id, pin)? {
        Login::In => Ok(signer),
        Login::Rejected => Err(Failure::mumble("signer login does not work / 簽署人登入故障")
            .with_private(format!("{signer_id} cannot log in with the PIN just set or issued"))),
    }
}

/// Logs in as the owner of a planted flag; a service that no longer knows them lost the flag.
fn login_owner(ctx: &Ctx, user_id: &str, secret: &str) -> Outcome<Client> {
    let mut client = Client::new(ctx);
    match client.login(user_id, secret)? {
        Login::In => Ok(client),
        Login::Rejected => {
            Err(Failure::corrupt("a flag is missing: its owner cannot log in / 旗幟遺失：擁有人無法登入")
                .with_private(format!("{user_id} cannot log in any more")))
        }
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

fn mumble(public: &str, private: impl Into<String>) -> Failure {
    Failure::mumble(public).with_private(private.into())
}

/// Shuffles `steps` with the seed, so the order of features varies from action to action.
fn shuffled<T>(rng: &mut Rng, mut steps: Vec<T>) -> Vec<T> {
    for i in (1..steps.len()).rev() {
        steps.swap(i, rng.range(0, i as u64 + 1) as usize);
    }
    steps
}

/// A licence's life in `check`: issued by the administrator, seen by the company's signer,
/// checked by strangers, its certificate downloaded.
fn licence_round(
    ctx: &Ctx,
    rng: &mut Rng,
    admin: &mut Client,
    signer: &mut Client,
    company: &Company,
    brn: &str,
) -> Outcome<()> {
    let licence = data::licence(rng, company, None);
    let issued = admin.issue_licence(&licence)?;
    let number = issued.number.clone();
    if issued.holder_brn != brn {
        return Err(mumble(
            "e-licence issue does not work / 簽發電子牌照故障",
            format!("{number} issued to {}", issued.holder_brn),
        ));
    }
    log!("{brn} holds {number}");
    let mut stranger = Client::new(ctx);
    for step in shuffled(rng, vec![0u8, 1, 2, 3, 4, 5]) {
        let wanted = rng.range(0, 10) < 6;
        match step {
            // The public check always runs: it is what the licence is for.
            0 => match stranger.licence_check(&number)? {
                Some(l) if l.holder_brn == brn && l.holder_name == company.name && l.status == "valid" => {}
                other => {
                    return Err(mumble(
                        "the public licence check does not work / 公開牌照查核故障",
                        format!("{number}: {other:?}"),
                    ));
                }
            },
            1 if wanted => {
                let seen = signer.licences()?;
                if !seen.iter().any(|l| {
                    l.number == number && l.confidential_note.as_deref() == Some(licence.confidential_note.as_str())
                }) {
                    return Err(mumble(
                        "authorised signers cannot see their company's e-licences / 授權簽署人看不到公司的電子牌照",
                        format!("{number} not among {} licences", seen.len()),
                    ));
                }
            }
            2 if wanted => {
                let text = admin.certificate(&number)?.unwrap_or_default();
                if !text.contains(&number) || !licence.conditions.iter().all(|c| text.contains(c.as_str())) {
                    return Err(mumble(
                        "certificate download does not work / 下載證書故障",
                        format!("{number}: {:?}", &text[..text.floor_char_boundary(300)]),
                    ));
                }
            }
            3 if wanted => {
                let lang = if rng.range(0, 2) == 0 { "en" } else { "zh-HK" };
                let (status, page) = stranger.page_any(&format!("/licences/{number}?lang={lang}"))?;
                if status != 200 || !page.contains(&number) || !page.contains(&data::html_escape(&company.name)) {
                    return Err(mumble(
                        "the licence page does not work / 牌照頁故障",
                        format!("/licences/{number}: {status}"),
                    ));
                }
            }
            4 if wanted => {
                let profile = stranger.company(brn)?;
                let listed = profile.get("licences").and_then(Value::as_array).is_some_and(|l| {
                    l.iter().any(|x| x.get("number").and_then(Value::as_str) == Some(number.as_str()))
                });
                if !listed || profile.get("name").and_then(Value::as_str) != Some(company.name.as_str()) {
                    return Err(mumble(
                        "the public company profile does not work / 公開公司資料故障",
                        format!("{brn}: {profile}"),
                    ));
                }
            }
            5 if wanted => match admin.licence(&number)? {
                Some(l) if l.confidential_note.as_deref() == Some(licence.confidential_note.as_str()) => {}
                other => {
                    return Err(mumble(
                        "the e-licence page does not work / 電子牌照頁故障",
                        format!("{number}: {other:?}"),
                    ));
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// Opens `link` as a counterparty would and checks it shows `document`.
fn open_link(ctx: &Ctx, link: &ShareLink, signed: &Doc, document: &Document, brn: &str) -> Outcome<()> {
    match Client::new(ctx).shared(&link.api)? {
        Some(d)
            if d.body.as_deref() == Some(document.body.as_str())
                && d.company_brn.as_deref() == Some(brn)
                && d.reference == signed.reference =>
        {
            Ok(())
        }
        Some(d) => Err(mumble(
            "opening a shared document does not work / 開啟分享文件故障",
            format!("{}: got {d:?}", link.api),
        )),
        None => Err(mumble("a share link does not open / 分享連結無法開啟", format!("{} refused", link.api))),
    }
}

/// Signing, verifying and sharing in `check`.
fn document_round(
    ctx: &Ctx,
    rng: &mut Rng,
    admin: &mut Client,
    signer: &mut Client,
    pin: &str,
    company: &Company,
    brn: &str,
) -> Outcome<()> {
    let document = data::document(rng, company);
    if rng.range(0, 4) == 0 {
        let wrong_pin = if pin == "13572468" { "24681357" } else { "13572468" };
        if signer.sign(&document, wrong_pin)?.is_some() {
            return Err(mumble("e-signing accepts a wrong PIN / 電子簽署接受錯誤密碼", "signed with a wrong PIN"));
        }
    }
    let Some(signed) = signer.sign(&document, pin)? else {
        return Err(mumble("e-signing refuses the signer's PIN / 電子簽署拒絕正確密碼", "403 with the right PIN"));
    };
    let kid = signed.signature.split('.').next().unwrap_or_default().to_owned();
    log!("{} signed {} with key {kid}", signed.signer_id, signed.reference);
    let mut stranger = Client::new(ctx);

    let v = stranger.verify(&document.body, &signed.signature)?;
    if !v.valid || v.brn.as_deref() != Some(brn) || v.reference.as_deref() != Some(signed.reference.as_str()) {
        return Err(mumble(
            "signature verification does not work / 核實簽署故障",
            format!("{}: {v:?}", signed.reference),
        ));
    }
    let mut altered = document.body.clone();
    altered.insert_str(altered.find('\n').unwrap_or(0), " 0");
    if stranger.verify(&altered, &signed.signature)?.valid {
        return Err(mumble(
            "verification accepts an altered document / 核實接受被改動的文件",
            signed.reference.clone(),
        ));
    }

    for step in shuffled(rng, vec![0u8, 1, 2]) {
        match step {
            0 if rng.range(0, 2) == 0
                && !signer
                    .documents()?
                    .iter()
                    .any(|d| d.reference == signed.reference && d.signature == signed.signature) =>
            {
                return Err(mumble(
                    "the list of signed documents does not work / 已簽署文件名單故障",
                    signed.reference.clone(),
                ));
            }
            1 if rng.range(0, 2) == 0 => match admin.document(&signed.reference)? {
                Some(d) if d.body.as_deref() == Some(document.body.as_str()) => {}
                other => {
                    return Err(mumble(
                        "the administrator cannot read a signed document / 管理員無法閱讀已簽署文件",
                        format!("{}: {other:?}", signed.reference),
                    ));
                }
            },
            2 if rng.range(0, 10) < 3 => {
                let lang = if rng.range(0, 2) == 0 { "en" } else { "zh-HK" };
                let page = stranger.verify_form(&document.body, &signed.signature, lang)?;
                if !page.contains("class=\"ok\"") || !page.contains(&signed.reference) {
                    return Err(mumble(
                        "the verification page does not work / 核實頁故障",
                        format!("{} not shown as valid", signed.reference),
                    ));
                }
            }
            _ => {}
        }
    }

    // Either the signer or the administrator shares the document with a counterparty.
    let days = rng.range(1, 31);
    let link = if rng.range(0, 2) == 0 {
        signer.share(&signed.reference, days)?
    } else {
        admin.share(&signed.reference, days)?
    };
    if link.kid != kid {
        return Err(mumble(
            "sharing a signed document does not work / 分享已簽署文件故障",
            format!("link key {} is not {kid}", link.kid),
        ));
    }
    open_link(ctx, &link, &signed, &document, brn)?;
    if rng.range(0, 3) == 0 {
        let page = stranger.page(&link.page, ("the shared document page", "分享文件頁"))?;
        if !page.contains(&data::html_escape(&document.title)) {
            return Err(mumble("the shared document page does not work / 分享文件頁故障", link.page.clone()));
        }
    }
    if rng.range(0, 2) == 0 {
        let later = link.expires + 86_400 * rng.range(1, 3);
        let tampered = format!("/api/shared/{}?k={}&e={later}&s={}", signed.reference, link.kid, link.mac);
        if stranger.shared(&tampered)?.is_some() {
            return Err(mumble("a tampered share link opens a document / 被改動的分享連結仍可開啟文件", tampered));
        }
    }

    // Companies rotate their keys; what was signed and shared before must still hold.
    if rng.range(0, 10) < 4 {
        let (new_kid, previous) = admin.rotate_key()?;
        if previous != kid || new_kid == kid {
            return Err(mumble(
                "signing key rotation does not work / 更換簽署密鑰故障",
                format!("{kid} -> {new_kid}, previous {previous}"),
            ));
        }
        let v = stranger.verify(&document.body, &signed.signature)?;
        if !v.valid || v.key_active != Some(false) {
            return Err(mumble(
                "a signature made before a key rotation no longer verifies / 更換密鑰前的簽署無法核實",
                format!("{v:?}"),
            ));
        }
        open_link(ctx, &link, &signed, &document, brn)?;
        let second = data::document(rng, company);
        let Some(signed2) = signer.sign(&second, pin)? else {
            return Err(mumble("e-signing refuses the signer's PIN / 電子簽署拒絕正確密碼", "after a key rotation"));
        };
        if !signed2.signature.starts_with(&format!("{new_kid}.")) {
            return Err(mumble(
                "signing key rotation does not work / 更換簽署密鑰故障",
                format!("signed with {} after rotating to {new_kid}", signed2.signature),
            ));
        }
        let link2 = signer.share(&signed2.reference, rng.range(1, 31))?;
        open_link(ctx, &link2, &signed2, &second, brn)?;
    }
    Ok(())
}

/// The actions themselves; [`Checker`] gives their failures bilingual messages.
impl BizSign {
    fn run_check(ctx: &Ctx) -> Outcome<()> {
        let mut rng = ctx.rng(1);
        let mut front = Client::new(ctx);
        let (path, brand) = if rng.range(0, 3) == 0 {
            ("/?lang=zh-HK", "商印通企業數碼身份")
        } else {
            ("/", "TradeSeal Business Identity")
        };
        if !front.page(path, ("the home page", "主頁"))?.contains(brand) {
            return Err(Failure::mumble("the home page is not TradeSeal's / 主頁不是商印通的"));
        }

        let (mut admin, company, brn) = new_company(ctx, &mut rng)?;
        match admin.me()? {
            Some(me) if me.role == "admin" && me.user_id == brn && me.brn == brn => {}
            other => {
                return Err(mumble(
                    "the account page shows the wrong user / 帳戶頁顯示錯誤用戶",
                    format!("{brn}: {other:?}"),
                ));
            }
        }

        // The administrator adds one to three signers, choosing some PINs and letting the
        // platform issue the others.
        let mut signers: Vec<(String, String)> = Vec::new();
        let mut names = Vec::new();
        for _ in 0..rng.range(1, 4) {
            let person = data::signer(&mut rng);
            let chosen = (rng.range(0, 2) == 0).then(|| data::pin(&mut rng));
            let added = admin.add_signer(&person.name, &person.title, chosen.as_deref())?;
            let pin = chosen.or(added.initial_pin).expect("add_signer checked that a PIN was set or issued");
            signers.push((added.signer_id, pin));
            names.push(person.name);
        }
        let listed = admin.signers()?;
        for ((id, _), name) in signers.iter().zip(&names) {
            if !listed.iter().any(|(i, n)| i == id && n == name) {
                return Err(mumble(
                    "the list of authorised signers does not work / 授權簽署人名單故障",
                    format!("{id} {name:?} not in {listed:?}"),
                ));
            }
        }

        let chosen = rng.range(0, signers.len() as u64) as usize;
        let (signer_id, mut pin) = signers[chosen].clone();
        let mut signer = signer_login(ctx, &signer_id, &pin)?;
        match signer.me()? {
            Some(me) if me.role == "signer" && me.user_id == signer_id && me.brn == brn => {}
            other => {
                return Err(mumble(
                    "the account page shows the wrong user / 帳戶頁顯示錯誤用戶",
                    format!("{signer_id}: {other:?}"),
                ));
            }
        }
        if rng.range(0, 10) < 6 {
            let mut new_pin = data::pin(&mut rng);
            while new_pin == pin {
                new_pin = data::pin(&mut rng);
            }
            signer.change_pin(&pin, &new_pin)?;
            if Client::new(ctx).login(&signer_id, &pin)? == Login::In {
                return Err(mumble("an old signing PIN still works / 舊簽署密碼仍然有效", signer_id.clone()));
            }
            pin = new_pin;
            signer = signer_login(ctx, &signer_id, &pin)?;
        }

        if rng.range(0, 10) < 7 {
            licence_round(ctx, &mut rng, &mut admin, &mut signer, &company, &brn)?;
        }
        document_round(ctx, &mut rng, &mut admin, &mut signer, &pin, &company, &brn)?;

        if signers.len() > 1 && rng.range(0, 10) < 3 {
            let (gone, gone_pin) = &signers[(chosen + 1) % signers.len()];
            admin.revoke(gone)?;
            if Client::new(ctx).login(gone, gone_pin)? == Login::In {
                return Err(mumble("a revoked signer can still log in / 已撤銷的簽署人仍可登入", gone.clone()));
            }
        }
        if rng.range(0, 10) < 3 {
            let page = admin.page("/account", ("the account page", "帳戶頁"))?;
            if !page.contains(&data::html_escape(&company.name)) {
                return Err(mumble(
                    "the account page does not work / 帳戶頁故障",
                    format!("{} not on /account", company.name),
                ));
            }
        }
        if rng.range(0, 2) == 0 {
            let who = if rng.range(0, 2) == 0 { &mut admin } else { &mut signer };
            who.logout()?;
            if who.me()?.is_some() {
                return Err(Failure::mumble("logging out does not end the session / 登出後仍然登入"));
            }
        }
        Ok(())
    }

    fn run_put(ctx: &Ctx, store: u8, flag: &str) -> Outcome<Planted> {
        let mut rng = ctx.rng(2);
        let (mut admin, company, brn) = new_company(ctx, &mut rng)?;
        match store {
            STORE_LICENCE => {
                if rng.range(0, 3) == 0 {
                    admin.issue_licence(&data::licence(&mut rng, &company, None))?;
                }
                let issued = admin.issue_licence(&data::licence(&mut rng, &company, Some(flag)))?;
                // The company's signers; at least one never changes the PIN the platform issued.
                let count = rng.range(1, 4);
                let lazy = rng.range(0, count);
                for i in 0..count {
                    let person = data::signer(&mut rng);
                    let pin = (i != lazy && rng.range(0, 2) == 0).then(|| data::pin(&mut rng));
                    admin.add_signer(&person.name, &person.title, pin.as_deref())?;
                }
                log!("{brn} planted the flag in {} and has {count} signers", issued.number);
                Ok(Planted {
                    flag_id: issued.number.clone(),
                    state: state(json!({"brn": brn, "password": company.password, "number": issued.number})),
                })
            }
            STORE_DOCUMENT => {
                for _ in 0..rng.range(0, 2) {
                    let person = data::signer(&mut rng);
                    let pin = (rng.range(0, 2) == 0).then(|| data::pin(&mut rng));
                    admin.add_signer(&person.name, &person.title, pin.as_deref())?;
                }
                // The tenderer's signer either has a PIN chosen by the administrator or changes
                // the issued one at first login.
                let person = data::signer(&mut rng);
                let mut pin = data::pin(&mut rng);
                let (signer_id, mut signer) = if rng.range(0, 2) == 0 {
                    let added = admin.add_signer(&person.name, &person.title, Some(&pin))?;
                    let signer = signer_login(ctx, &added.signer_id, &pin)?;
                    (added.signer_id, signer)
                } else {
                    let added = admin.add_signer(&person.name, &person.title, None)?;
                    let issued = added.initial_pin.expect("add_signer checked that a PIN was issued");
                    let mut signer = signer_login(ctx, &added.signer_id, &issued)?;
                    if pin == issued {
                        pin = "86420135".to_owned();
                    }
                    signer.change_pin(&issued, &pin)?;
                    (added.signer_id, signer)
                };
                for _ in 0..rng.range(0, 3) {
                    if signer.sign(&data::document(&mut rng, &company), &pin)?.is_none() {
                        return Err(mumble(
                            "e-signing refuses the signer's PIN / 電子簽署拒絕正確密碼",
                            signer_id.clone(),
                        ));
                    }
                }
                let tender = data::tender(&mut rng, &company, flag);
                let Some(signed) = signer.sign(&tender, &pin)? else {
                    return Err(mumble("e-signing refuses the signer's PIN / 電子簽署拒絕正確密碼", signer_id.clone()));
                };
                log!("{signer_id} planted the flag in {}", signed.reference);
                Ok(Planted {
                    flag_id: signed.reference.clone(),
                    state: state(json!({
                        "brn": brn,
                        "password": company.password,
                        "signer_id": signer_id,
                        "pin": pin,
                        "reference": signed.reference,
                        "signature": signed.signature,
                    })),
                })
            }
            _ => unreachable!("the SDK only passes stores below FLAG_STORES"),
        }
    }

    fn run_get(ctx: &Ctx, store: u8, flag: &str, state: &[u8]) -> Outcome<()> {
        let state = read_state(state);
        let mut rng = ctx.rng(3);
        match store {
            STORE_LICENCE => {
                let number = state_str(&state, "number");
                let mut admin = login_owner(ctx, state_str(&state, "brn"), state_str(&state, "password"))?;
                // Holders come back to their licences in different ways.
                let text = match rng.range(0, 3) {
                    0 => admin.licence(number)?.and_then(|l| l.confidential_note),
                    1 => admin.licences()?.into_iter().find(|l| l.number == number).and_then(|l| l.confidential_note),
                    _ => admin.certificate(number)?,
                };
                match text {
                    Some(t) if t.contains(flag) => Ok(()),
                    Some(_) => {
                        Err(Failure::corrupt("a flag is missing: an e-licence was altered / 旗幟遺失：電子牌照被改動")
                            .with_private(format!("{number} no longer holds the flag")))
                    }
                    None => Err(Failure::corrupt("a flag is missing: an e-licence is gone / 旗幟遺失：電子牌照不見了")
                        .with_private(format!("{number}: not found by its holder"))),
                }
            }
            STORE_DOCUMENT => {
                let reference = state_str(&state, "reference");
                let mut owner = if rng.range(0, 2) == 0 {
                    login_owner(ctx, state_str(&state, "brn"), state_str(&state, "password"))?
                } else {
                    login_owner(ctx, state_str(&state, "signer_id"), state_str(&state, "pin"))?
                };
                let Some(doc) = owner.document(reference)? else {
                    return Err(Failure::corrupt(
                        "a flag is missing: a signed document is gone / 旗幟遺失：已簽署文件不見了",
                    )
                    .with_private(format!("{reference}: 404 to its owner")));
                };
                let body = doc.body.unwrap_or_default();
                if !body.contains(flag) {
                    return Err(Failure::corrupt(
                        "a flag is missing: a signed document was altered / 旗幟遺失：已簽署文件被改動",
                    )
                    .with_private(format!("{reference} no longer holds the flag")));
                }
                if rng.range(0, 10) < 3 {
                    let signature = state_str(&state, "signature");
                    let v = Client::new(ctx).verify(&body, signature)?;
                    if !v.valid {
                        return Err(mumble(
                            "a genuine signature does not verify / 真確的簽署無法核實",
                            format!("{reference}: {v:?}"),
                        ));
                    }
                }
                Ok(())
            }
            _ => unreachable!("the SDK only passes stores below FLAG_STORES"),
        }
    }

    fn run_exploit(ctx: &Ctx, store: u8, flag_id: &str) -> Outcome<Vec<String>> {
        match store {
            STORE_LICENCE => {
                // The public check names the holder; its signers are BRN-01, BRN-02, ...; and
                // a signer whose administrator chose no PIN still has the platform's 000000.
                let Some(licence) = Client::new(ctx).licence_check(flag_id)? else {
                    log!("no licence {flag_id}");
                    return Ok(Vec::new());
                };
                let brn = licence.holder_brn;
                let count = Client::new(ctx).company(&brn)?.get("signers").and_then(Value::as_u64).unwrap_or(3);
                for seq in 1..=(count + 3).min(99) {
                    let signer_id = format!("{brn}-{seq:02}");
                    let mut thief = Client::new(ctx);
                    if thief.login(&signer_id, INITIAL_PIN)? == Login::In {
                        let response = thief.raw("/api/licences?limit=100")?;
                        log!("{signer_id} has the initial PIN; licences: {}", response.status);
                        return Ok(if response.status == 200 { flags::find(&response.body) } else { Vec::new() });
                    }
                }
                log!("no signer of {brn} has the initial PIN");
                Ok(Vec::new())
            }
            STORE_DOCUMENT => {
                // A share link's MAC is HMAC(key, "REF|EXPIRES"), a signature is HMAC(key,
                // text), and the link's key id is looked up among every company's keys: our
                // own company signs "REF|EXPIRES" and its key opens the victim's document.
                let mut rng = ctx.rng(4);
                let (mut admin, company, _) = new_company(ctx, &mut rng)?;
                let person = data::signer(&mut rng);
                let pin = data::pin(&mut rng);
                let added = admin.add_signer(&person.name, &person.title, Some(&pin))?;
                let mut signer = signer_login(ctx, &added.signer_id, &pin)?;
                let Some(own) = signer.sign(&data::document(&mut rng, &company), &pin)? else {
                    return Err(mumble("e-signing refuses the signer's PIN / 電子簽署拒絕正確密碼", added.signer_id));
                };
                let expires = signer.share(&own.reference, 7)?.expires;
                let forged = Document { title: "Memo".to_owned(), body: format!("{flag_id}|{expires}") };
                let Some(signed) = signer.sign(&forged, &pin)? else {
                    return Err(mumble("e-signing refuses the signer's PIN / 電子簽署拒絕正確密碼", added.signer_id));
                };
                let (kid, mac) = signed.signature.split_once('.').unwrap_or_default();
                let path = format!("/api/shared/{flag_id}?k={}&e={expires}&s={}", query_encode(kid), query_encode(mac));
                let response = Client::new(ctx).raw(&path)?;
                log!("forged share link for {flag_id} with key {kid}: {}", response.status);
                Ok(if response.status == 200 { flags::find(&response.body) } else { Vec::new() })
            }
            _ => unreachable!("the SDK only passes stores below FLAG_STORES"),
        }
    }
}

impl Checker for BizSign {
    const SERVICE: &'static str = "bizsign";
    const FLAG_STORES: u8 = 2;
    const HAS_EXPLOIT: bool = true;

    fn check(ctx: &Ctx) -> Outcome<()> {
        bilingual(BizSign::run_check(ctx))
    }

    fn put(ctx: &Ctx, store: u8, flag: &str) -> Outcome<Planted> {
        bilingual(BizSign::run_put(ctx, store, flag))
    }

    fn get(ctx: &Ctx, store: u8, flag: &str, state: &[u8]) -> Outcome<()> {
        bilingual(BizSign::run_get(ctx, store, flag, state))
    }

    fn exploit(ctx: &Ctx, store: u8, flag_id: &str) -> Outcome<Vec<String>> {
        bilingual(BizSign::run_exploit(ctx, store, flag_id))
    }
}

gongfang_checker_sdk::export_checker!(BizSign);

#[cfg(test)]
mod tests {
    use crate::client::broken;

    #[test]
    fn messages_are_bilingual() {
        assert_eq!(broken(("login", "登入")), "login does not work / 登入故障");
    }
}
