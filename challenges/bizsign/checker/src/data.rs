//! Seeded, realistic traffic for TradeSeal: Hong Kong-style companies with English and
//! Chinese names, their directors and secretaries as authorised signers, the e-licences their
//! trades need, and the quotations, tenders and letters they sign.
//!
//! Everything comes from the action's [`Rng`], so a replayed action sends the same data, and
//! nothing repeats from tick to tick in a way a team could match on.

use gongfang_checker_sdk::Rng;

/// The first part of a company name, English and Chinese.
const BRANDS: &[(&str, &str)] = &[
    ("Golden Harbour", "金港"),
    ("Lion Rock", "獅子山"),
    ("Victoria Peak", "太平山"),
    ("Kowloon Bay", "九龍灣"),
    ("Tsing Yi", "青衣"),
    ("Jade Garden", "翠園"),
    ("Evergreen", "長青"),
    ("Fortune Star", "福星"),
    ("Sunrise", "旭日"),
    ("Double Happiness", "雙喜"),
    ("Eastern Pearl", "東方明珠"),
    ("Tin Hau", "天后"),
    ("Silver Strand", "銀線灣"),
    ("Bauhinia", "紫荊"),
    ("Sai Kung Bay", "西貢灣"),
    ("Cheung Chau", "長洲"),
];

/// A trade: English and Chinese names, and the licence types such a company holds.
struct Trade {
    en: &'static str,
    zh: &'static str,
    licences: &'static [&'static str],
}

const TRADES: &[Trade] = &[
    Trade { en: "Catering", zh: "飲食", licences: &["RST", "LQP"] },
    Trade { en: "Food Manufacturing", zh: "食品製造", licences: &["FFL"] },
    Trade { en: "Bakery", zh: "餅家", licences: &["FFL", "RST"] },
    Trade { en: "Trading", zh: "貿易", licences: &["IEL"] },
    Trade { en: "Import and Export", zh: "進出口", licences: &["IEL"] },
    Trade { en: "Wine Merchants", zh: "酒業", licences: &["LQP", "IEL"] },
    Trade { en: "Engineering", zh: "工程", licences: &["RCC"] },
    Trade { en: "Construction", zh: "建築", licences: &["RCC"] },
    Trade { en: "Hospitality", zh: "酒店管理", licences: &["GHL", "RST"] },
];

const SUFFIXES: &[(&str, &str)] =
    &[("Company Limited", "有限公司"), ("Limited", "有限公司"), ("(Holdings) Limited", "(集團)有限公司")];

const FAMILY: &[(&str, &str)] = &[
    ("Chan", "陳"),
    ("Wong", "黃"),
    ("Lee", "李"),
    ("Cheung", "張"),
    ("Lau", "劉"),
    ("Ng", "吳"),
    ("Ho", "何"),
    ("Leung", "梁"),
    ("Lam", "林"),
    ("Tsang", "曾"),
    ("Chow", "周"),
    ("Yip", "葉"),
    ("Kwok", "郭"),
    ("Mak", "麥"),
    ("Tang", "鄧"),
];

const GIVEN: &[(&str, &str)] = &[
    ("Tai", "大"),
    ("Man", "文"),
    ("Siu", "小"),
    ("Ming", "明"),
    ("Ka", "嘉"),
    ("Wai", "偉"),
    ("Mei", "美"),
    ("Ling", "玲"),
    ("Chi", "志"),
    ("Kin", "健"),
    ("Wing", "詠"),
    ("Yan", "欣"),
    ("Hoi", "凱"),
    ("Kwan", "君"),
    ("Sze", "詩"),
    ("Fung", "峰"),
];

const ENGLISH_NAMES: &[&str] =
    &["Alex", "Winnie", "Kenneth", "Cathy", "Raymond", "Joyce", "Edmond", "Priscilla", "Stanley", "Vivian", "Gary"];

const TITLES: &[&str] = &[
    "Director",
    "Managing Director",
    "Company Secretary",
    "Finance Manager",
    "Operations Manager",
    "General Manager",
    "Procurement Officer",
    "Chief Executive",
    "董事",
    "公司秘書",
];

const STREETS: &[(&str, &str)] = &[
    ("Nathan Road", "Yau Ma Tei"),
    ("Hennessy Road", "Wan Chai"),
    ("Des Voeux Road Central", "Central"),
    ("Castle Peak Road", "Tsuen Wan"),
    ("Ma Tau Wai Road", "To Kwa Wan"),
    ("King's Road", "North Point"),
    ("Hoi Bun Road", "Kwun Tong"),
    ("Sha Tsui Road", "Tsuen Wan"),
    ("Wang Chiu Road", "Kowloon Bay"),
    ("On Lai Street", "Shek Mun"),
];

/// A company as its administrator registers it.
#[derive(Debug, Clone)]
pub struct Company {
    pub name: String,
    pub name_zh: String,
    pub password: String,
    trade: usize,
}

impl Company {
    /// A licence type this company's trade holds.
    pub fn licence_type(&self, rng: &mut Rng) -> &'static str {
        let kinds = TRADES[self.trade].licences;
        kinds[rng.range(0, kinds.len() as u64) as usize]
    }

    /// A word of the trade, for document titles.
    pub fn trade(&self) -> &'static str {
        TRADES[self.trade].en
    }
}

/// An authorised signer as the administrator adds them.
#[derive(Debug, Clone)]
pub struct Signer {
    pub name: String,
    pub title: String,
}

/// An e-licence application.
#[derive(Debug, Clone)]
pub struct Licence {
    pub kind: &'static str,
    pub premises: String,
    pub conditions: Vec<String>,
    pub confidential_note: String,
    pub months: u64,
}

/// A document an authorised signer signs.
#[derive(Debug, Clone)]
pub struct Document {
    pub title: String,
    pub body: String,
}

/// A new company with a strong administrator password.
pub fn company(rng: &mut Rng) -> Company {
    let (brand, brand_zh) = *rng.pick(BRANDS);
    let trade = rng.range(0, TRADES.len() as u64) as usize;
    let (suffix, suffix_zh) = *rng.pick(SUFFIXES);
    let t = &TRADES[trade];
    let (name, name_zh) = match rng.range(0, 5) {
        0 => {
            (format!("{brand} {} ({}) {suffix}", t.en, rng.range(1985, 2025)), format!("{brand_zh}{}{suffix_zh}", t.zh))
        }
        // Some companies have no Chinese name.
        1 => (format!("{brand} {} {suffix}", t.en), String::new()),
        _ => (format!("{brand} {} {suffix}", t.en), format!("{brand_zh}{}{suffix_zh}", t.zh)),
    };
    // The service asks for at least 10 characters; these have 12 to 16.
    Company { name, name_zh, password: rng.password(), trade }
}

/// A person's name as a Hong Kong company records it.
fn person(rng: &mut Rng) -> String {
    let (family, family_zh) = *rng.pick(FAMILY);
    let (g1, g1_zh) = *rng.pick(GIVEN);
    let (g2, g2_zh) = *rng.pick(GIVEN);
    match rng.range(0, 4) {
        0 => format!("{family} {g1} {g2}"),
        1 => format!("{} {family}", rng.pick(ENGLISH_NAMES)),
        2 => format!("{family_zh}{g1_zh}{g2_zh}"),
        _ => format!("{} {family} {g1} {g2}", rng.pick(ENGLISH_NAMES)),
    }
}

/// An authorised signer to add.
pub fn signer(rng: &mut Rng) -> Signer {
    Signer { name: person(rng), title: (*rng.pick(TITLES)).to_owned() }
}

/// A signing PIN a careful signer chooses: 6 to 8 digits, not all the same.
pub fn pin(rng: &mut Rng) -> String {
    let len = rng.range(6, 9);
    loop {
        let pin: String = (0..len).map(|_| char::from(b'0' + rng.range(0, 10) as u8)).collect();
        if pin.bytes().any(|b| b != pin.as_bytes()[0]) {
            return pin;
        }
    }
}

fn premises(rng: &mut Rng) -> String {
    let (street, area) = *rng.pick(STREETS);
    match rng.range(0, 3) {
        0 => format!("Shop {}, G/F, {} {street}, {area}", rng.range(1, 30), rng.range(1, 400)),
        1 => format!(
            "Unit {}{}, {}/F, {} {street}, {area}",
            rng.range(1, 20),
            rng.pick(&["A", "B", "C", "D"]),
            rng.range(2, 30),
            rng.range(1, 400)
        ),
        _ => format!(
            "Workshop {}, {}/F, Block {}, {} {street}, {area}",
            rng.range(1, 40),
            rng.range(1, 16),
            rng.pick(&["A", "B", "C"]),
            rng.range(1, 400)
        ),
    }
}

/// The conditions a licence of `kind` carries.
fn conditions(rng: &mut Rng, kind: &str) -> Vec<String> {
    let pool: &[&str] = match kind {
        "RST" | "FFL" => &[
            "The grease trap shall be cleaned at least once a week.",
            "No food shall be prepared outside the licensed kitchen area.",
            "A certified hygiene manager shall be on duty during opening hours.",
            "Frozen confections shall be kept at or below -18°C.",
            "The number of seats shall not exceed the approved seating plan.",
            "持牌人須確保所有食物從合法來源購入。",
        ],
        "LQP" => &[
            "No intoxicating liquor shall be sold to persons under 18.",
            "Liquor may be sold only between 10:00 and 02:00.",
            "The permit shall be displayed at the entrance of the premises.",
        ],
        "IEL" => &[
            "Each consignment shall be declared within 14 days of export.",
            "Strategic commodities are excluded from this licence.",
            "Records of every consignment shall be kept for seven years.",
        ],
        "GHL" => &[
            "The guesthouse shall not have more than 12 rooms.",
            "Fire service installations shall be inspected every 12 months.",
            "A register of guests shall be kept on the premises.",
        ],
        _ => &[
            "Works shall be supervised by an approved technical director.",
            "Site safety records shall be produced on request.",
            "The contractor shall notify the Office of any change of directors within 14 days.",
        ],
    };
    let n = rng.range(1, pool.len().min(4) as u64 + 1) as usize;
    let start = rng.range(0, pool.len() as u64) as usize;
    (0..n).map(|i| pool[(start + i) % pool.len()].to_owned()).collect()
}

fn date(rng: &mut Rng) -> String {
    format!("{}-{:02}-{:02}", rng.range(2023, 2026), rng.range(1, 13), rng.range(1, 29))
}

/// An everyday confidential note on a licence.
fn everyday_note(rng: &mut Rng) -> String {
    match rng.range(0, 3) {
        0 => format!("Inspection on {}: no irregularities.", date(rng)),
        1 => format!("Renewal reminder: submit the fire certificate by {}.", date(rng)),
        _ => String::new(),
    }
}

/// A licence the company applies for; its confidential note holds `flag` when given.
pub fn licence(rng: &mut Rng, company: &Company, flag: Option<&str>) -> Licence {
    let kind = company.licence_type(rng);
    let confidential_note = match flag {
        Some(flag) => {
            let line = *rng.pick(&[
                "Undertaking accepted after the inspection of",
                "Warning letter issued on",
                "Special condition agreed at the hearing of",
                "Compliance plan approved on",
            ]);
            format!("{line} {}. Case reference {flag}. Not for publication.", date(rng))
        }
        None => everyday_note(rng),
    };
    Licence {
        kind,
        premises: premises(rng),
        conditions: conditions(rng, kind),
        confidential_note,
        months: rng.range(6, 37),
    }
}

const PROJECTS: &[&str] = &[
    "supply of kitchen equipment to the Tai Po community hall",
    "catering services for the harbour festival",
    "renovation of the Sham Shui Po market stalls",
    "cleaning services for public toilets in Eastern District",
    "import of 400 cartons of frozen dim sum",
    "maintenance of footbridges in Kwun Tong",
    "staff canteen operation at the Cheung Sha Wan office",
    "bulk purchase of office paper and toner",
];

fn quote_lines(rng: &mut Rng) -> String {
    let items = ["Labour", "Materials", "Transport", "Equipment hire", "Insurance", "Management fee", "Contingency"];
    let n = rng.range(2, 6) as usize;
    let start = rng.range(0, items.len() as u64) as usize;
    let mut out = String::new();
    // Half the documents tabulate prices with '|', the way spreadsheets are pasted.
    let table = rng.range(0, 2) == 0;
    for i in 0..n {
        let item = items[(start + i) % items.len()];
        let price = rng.range(2, 900) * 100;
        if table {
            out.push_str(&format!("{item} | {} | HK${price}\n", rng.range(1, 20)));
        } else {
            out.push_str(&format!("- {item}: HK${price}\n"));
        }
    }
    out
}

/// An everyday document: a quotation, a letter, minutes.
pub fn document(rng: &mut Rng, company: &Company) -> Document {
    let project = *rng.pick(PROJECTS);
    match rng.range(0, 3) {
        0 => Document {
            title: format!("Quotation Q{}-{:04}", rng.range(2024, 2027), rng.range(1, 9999)),
            body: format!(
                "{} hereby quotes for the {project}:\n{}Valid for 30 days.\n",
                company.name,
                quote_lines(rng)
            ),
        },
        1 => Document {
            title: format!("Letter of authorisation {}", date(rng)),
            body: format!(
                "To whom it may concern,\n\n{} authorises {} to collect documents on its behalf in connection with the {project}.\n\nYours faithfully\n",
                company.name,
                person(rng)
            ),
        },
        _ => Document {
            title: format!("Board minutes {}", date(rng)),
            body: format!(
                "Minutes of the board of {}.\nPresent: {}, {}.\nResolved: to bid for the {project}.\n{}\n",
                company.name,
                person(rng),
                person(rng),
                rng.sentence()
            ),
        },
    }
}

/// A confidential tender submission holding `flag`.
pub fn tender(rng: &mut Rng, company: &Company, flag: &str) -> Document {
    let project = *rng.pick(PROJECTS);
    let number = format!("T{}/{:03}", rng.range(2024, 2027), rng.range(1, 999));
    let line =
        *rng.pick(&["Bid security reference:", "Pricing schedule code:", "Bank guarantee number:", "Sealed bid key:"]);
    Document {
        title: format!("Tender submission {number} ({})", company.trade()),
        body: format!(
            "CONFIDENTIAL · 機密\nTender {number}: {project}.\nTenderer: {} {}\n\n{}\n{line} {flag}\n\nSigned for and on behalf of the tenderer.\n",
            company.name,
            company.name_zh,
            quote_lines(rng)
        ),
    }
}

/// Escapes text for HTML the way the service's pages do (`&`, `<`, `>`, `"`, `'`).
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_digits_and_not_trivial() {
        let mut rng = Rng::new(5);
        for _ in 0..200 {
            let p = pin(&mut rng);
            assert!((6..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()), "{p}");
            assert!(p.bytes().any(|b| b != p.as_bytes()[0]), "{p}");
        }
    }

    #[test]
    fn flags_land_once() {
        let mut rng = Rng::new(11);
        let c = company(&mut rng);
        assert!(c.password.len() >= 12);
        let l = licence(&mut rng, &c, Some("FLAG{x}"));
        assert_eq!(l.confidential_note.matches("FLAG{x}").count(), 1);
        let t = tender(&mut rng, &c, "FLAG{y}");
        assert_eq!(t.body.matches("FLAG{y}").count(), 1);
    }
}
