//! The checker of the Open Data Portal (開放數據平台) demo challenge.
//!
//! - `check` behaves like a department officer and a few visitors: register, log in, publish
//!   public and private datasets, find them in the list, search and home page, preview,
//!   download and export them, keep notes, log out. Which features it touches, in what order
//!   and with what data, comes from the action's seed.
//! - Flag store 0 is a private dataset (flag id: the dataset's number); store 1 is a private
//!   note (flag id: the owner's user name). The state handed to `get` is the owner's
//!   credentials.
//! - `exploit` is the organisers' reference attack: store 0 downloads the private dataset
//!   without owning it (the download forgets the ownership check); store 1 reads the owner's
//!   notes file through the export download's path traversal.

mod data;
mod flags;
mod portal;

use gongfang_checker_sdk::{Checker, Ctx, Failure, Outcome, Planted, Rng, log};
use serde_json::{Value, json};

use crate::data::{Account, Dataset};
use crate::portal::{Login, Meta, Portal};

/// The service's checker.
pub struct OpenData;

/// The stores `put` and `get` know.
const STORE_DATASET: u8 = 0;
const STORE_NOTE: u8 = 1;

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
            Login::Rejected => Err(Failure::mumble("login does not work")
                .with_private(format!("{} was just registered but cannot log in", account.username))),
        };
    }
    Err(Failure::mumble("registration does not work").with_private("four fresh user names in a row were taken"))
}

/// Logs in as the owner of a planted flag; a portal that no longer knows them lost the flag.
fn login_owner(ctx: &Ctx, username: &str, password: &str) -> Outcome<Portal> {
    let mut portal = Portal::new(ctx);
    match portal.login(username, password)? {
        Login::In => Ok(portal),
        Login::Rejected => Err(Failure::corrupt("a flag is missing: its owner's account is gone")
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
fn expect_listed(list: &[Meta], id: u64, dataset: &Dataset, owner: &str, feature: &str) -> Outcome<()> {
    match list.iter().find(|m| m.id == id) {
        Some(m) if m.title == dataset.title && m.owner == owner && m.rows == dataset.rows.len() as u64 => Ok(()),
        Some(m) => {
            Err(Failure::mumble(format!("{feature} shows a dataset wrongly"))
                .with_private(format!("dataset {id}: {m:?}")))
        }
        None => Err(Failure::mumble(format!("{feature} misses a dataset published a moment ago"))
            .with_private(format!("dataset {id} {:?} not among {} results", dataset.title, list.len()))),
    }
}

/// Fails with `mumble` if `list` shows a private dataset.
fn expect_not_listed(list: &[Meta], id: Option<u64>, feature: &str) -> Outcome<()> {
    match id {
        Some(id) if list.iter().any(|m| m.id == id) => {
            Err(Failure::mumble(format!("{feature} shows a private dataset"))
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
                expect_listed(&list, id, dataset, owner, "the dataset list")?;
                expect_not_listed(&list, private_id, "the dataset list")?;
                found_it = true;
            }
            1 if wanted => {
                let word = dataset.search_word();
                let results = visitor.search(word)?;
                expect_listed(&results, id, dataset, owner, "search")?;
                expect_not_listed(&results, private_id, "search")?;
                found_it = true;
            }
            2 if wanted => {
                let Some(meta) = visitor.dataset(id)? else {
                    return Err(Failure::mumble("a public dataset's page is missing")
                        .with_private(format!("dataset {id}: 404")));
                };
                expect_listed(&[meta], id, dataset, owner, "the dataset page")?;
            }
            3 => {
                let Some(csv) = visitor.download(id)? else {
                    return Err(Failure::mumble("a public dataset cannot be downloaded")
                        .with_private(format!("dataset {id}: 404")));
                };
                if csv != dataset.csv() {
                    return Err(Failure::mumble("a downloaded dataset differs from what was published")
                        .with_private(format!("dataset {id}: got {:?}", &csv[..csv.floor_char_boundary(300)])));
                }
            }
            4 if wanted => {
                let Some(preview) = visitor.preview(id)? else {
                    return Err(Failure::mumble("a public dataset's preview is missing")
                        .with_private(format!("dataset {id}: 404")));
                };
                let shown = dataset.rows.len().min(10);
                if preview.columns != dataset.header
                    || preview.total_rows != dataset.rows.len() as u64
                    || preview.rows.as_slice() != &dataset.rows[..shown]
                {
                    return Err(Failure::mumble("a dataset's preview shows the wrong rows").with_private(format!(
                        "dataset {id}: columns {:?}, {} rows",
                        preview.columns,
                        preview.rows.len()
                    )));
                }
            }
            5 if wanted => {
                let page = visitor.home(Some(dataset.search_word()))?;
                if !page.contains("Open Data Portal") || !page.contains(&data::html_escape(&dataset.title)) {
                    return Err(Failure::mumble("the home page does not show a dataset published a moment ago")
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
                    return Err(Failure::mumble("a private dataset's page is open to everyone")
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
    let response = officer
        .fetch_export(&file)?
        .expect_status(200)
        .map_err(|f| f.context("exported datasets cannot be downloaded"))?;
    let ok = match format {
        "json" => {
            let rows = response.json()?;
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
            let text = response.text()?;
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
        Err(Failure::mumble("an exported dataset differs from what was published")
            .with_private(format!("dataset {id} exported as {format} to {file}")))
    }
}

impl Checker for OpenData {
    const SERVICE: &'static str = "opendata";
    const FLAG_STORES: u8 = 2;
    const HAS_EXPLOIT: bool = true;

    fn check(ctx: &Ctx) -> Outcome<()> {
        let mut rng = ctx.rng(1);
        let mut front = Portal::new(ctx);
        if !front.home(None)?.contains("Open Data Portal") {
            return Err(Failure::mumble("the home page is not the portal's"));
        }

        let (mut officer, account) = new_officer(ctx, &mut rng)?;
        match officer.me()? {
            Some((name, department)) if name == account.username && department == account.department => {}
            other => {
                return Err(Failure::mumble("the account page shows the wrong user").with_private(format!(
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

        visit(ctx, &mut rng, public_id, &public, &account.username, private_id)?;

        let mine = officer.mine()?;
        expect_listed(&mine, public_id, &public, &account.username, "the list of one's own datasets")?;
        if let (Some(id), Some(d)) = (private_id, &private) {
            expect_listed(&mine, id, d, &account.username, "the list of one's own datasets")?;
            if officer.download(id)?.as_deref() != Some(d.csv().as_str()) {
                return Err(Failure::mumble("an officer cannot download their own private dataset")
                    .with_private(format!("dataset {id}")));
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
                return Err(Failure::mumble("a note saved a moment ago is missing"));
            }
        }
        if rng.range(0, 2) == 0 {
            officer.logout()?;
            if officer.me()?.is_some() {
                return Err(Failure::mumble("logging out does not end the session"));
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
                            return Err(Failure::corrupt("a flag is missing: a private dataset is gone")
                                .with_private(format!("dataset {id} is not among {username}'s datasets")));
                        }
                        owner.download(id)?
                    }
                    _ => owner.download(id)?,
                };
                match text {
                    Some(t) if t.contains(flag) => Ok(()),
                    Some(_) => Err(Failure::corrupt("a flag is missing: a private dataset was altered")
                        .with_private(format!("dataset {id} no longer holds the flag"))),
                    None => Err(Failure::corrupt("a flag is missing: a private dataset is gone")
                        .with_private(format!("dataset {id}: 404 to its owner {username}"))),
                }
            }
            STORE_NOTE => {
                if owner.notes()?.iter().any(|n| n.body.contains(flag)) {
                    Ok(())
                } else {
                    Err(Failure::corrupt("a flag is missing: a private note is gone")
                        .with_private(format!("no note of {username} holds the flag")))
                }
            }
            _ => unreachable!("the SDK only passes stores below FLAG_STORES"),
        }
    }

    fn exploit(ctx: &Ctx, store: u8, flag_id: &str) -> Outcome<Vec<String>> {
        match store {
            STORE_DATASET => {
                // Private datasets are hidden everywhere except the download, which never asks
                // who is downloading.
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
}

gongfang_checker_sdk::export_checker!(OpenData);
