//! Seeded, realistic gateway traffic: invented Hong Kong departments that hold or ask for
//! records, citizens with English and Chinese names, records that look like the registers they
//! come from, and the purposes departments state when they ask for consent.
//!
//! Everything comes from the action's [`Rng`], so a replayed action sends the same data, and
//! nothing repeats from tick to tick in a way a team could match on.

use gongfang_checker_sdk::Rng;
use gongfang_checker_sdk::random::DISTRICTS;

/// The kinds of record the gateway exchanges (its `/api/record-types`).
pub const RECORD_TYPES: &[&str] = &[
    "address",
    "driving-licence",
    "tax-residency",
    "vaccination",
    "qualification",
    "property",
    "income",
    "marital-status",
];

/// A department that holds records: English name, Chinese name, the record types it keeps and
/// the prefix of its file references.
pub struct Holder {
    pub name: &'static str,
    pub name_zh: &'static str,
    pub types: &'static [&'static str],
    pub code: &'static str,
}

pub const HOLDERS: &[Holder] = &[
    Holder { name: "Residential Address Registry", name_zh: "住址登記處", types: &["address"], code: "RAR" },
    Holder {
        name: "Road Licensing Office", name_zh: "道路牌照事務處", types: &["driving-licence"], code: "RLO"
    },
    Holder {
        name: "Revenue Assessment Department",
        name_zh: "稅務評估署",
        types: &["tax-residency", "income"],
        code: "RAD",
    },
    Holder {
        name: "Public Health Records Unit", name_zh: "公共衞生紀錄組", types: &["vaccination"], code: "PHR"
    },
    Holder { name: "Qualifications Registry", name_zh: "資歷登記處", types: &["qualification"], code: "QR" },
    Holder { name: "Land Titles Office", name_zh: "土地業權處", types: &["property"], code: "LTO" },
    Holder {
        name: "Civil Status Registry", name_zh: "民事登記處", types: &["marital-status", "address"], code: "CSR"
    },
];

/// A department that asks for records, with the purposes it states (English, Chinese).
pub struct Requester {
    pub name: &'static str,
    pub name_zh: &'static str,
    pub code: &'static str,
    pub purposes: &'static [(&'static str, &'static str)],
}

pub const REQUESTERS: &[Requester] = &[
    Requester {
        name: "Housing Allocation Office",
        name_zh: "房屋編配處",
        code: "HAO",
        purposes: &[
            ("To assess your application for public rental housing", "審核你的公共租住房屋申請"),
            ("To review your household's eligibility at the next tenancy renewal", "在下次續租時覆核你家庭的資格"),
        ],
    },
    Requester {
        name: "Social Security Payments Office",
        name_zh: "社會保障發放處",
        code: "SSP",
        purposes: &[
            ("To check your eligibility for the Old Age Living Allowance", "審核你領取長者生活津貼的資格"),
            ("To process your application for disability allowance", "處理你的傷殘津貼申請"),
        ],
    },
    Requester {
        name: "Tertiary Grants Unit",
        name_zh: "專上資助組",
        code: "TGU",
        purposes: &[
            ("To assess your application for a tertiary student grant", "審核你的專上學生資助申請"),
            ("To confirm your study record for the continuing education fund", "為持續進修基金核實你的學歷紀錄"),
        ],
    },
    Requester {
        name: "Labour Placement Office",
        name_zh: "勞工就業辦事處",
        code: "LPO",
        purposes: &[
            ("To match you with vacancies in the youth employment scheme", "為你配對青年就業計劃的職位空缺"),
            ("To verify your documents for the retraining allowance", "為再培訓津貼核實你的文件"),
        ],
    },
    Requester {
        name: "Transport Subsidy Office",
        name_zh: "交通補貼辦事處",
        code: "TSO",
        purposes: &[
            ("To process your public transport fare subsidy", "處理你的公共交通費用補貼"),
            ("To renew your concessionary travel card", "為你續發乘車優惠卡"),
        ],
    },
    Requester {
        name: "Elderly Care Subsidy Office",
        name_zh: "長者護理資助辦事處",
        code: "ECS",
        purposes: &[
            ("To assess your application for a residential care voucher", "審核你的院舍照顧服務券申請"),
            ("To arrange a home care assessment visit", "安排上門家居照顧評估"),
        ],
    },
];

const GIVEN_ZH: &[&str] =
    &["美玲", "家明", "志強", "詠詩", "嘉欣", "浩然", "慧敏", "子軒", "凱婷", "國華", "少芬", "俊傑"];
const FAMILY_ZH: &[(&str, &str)] = &[
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
    ("Yip", "葉"),
    ("Kwok", "郭"),
];
const GIVEN_EN: &[&str] =
    &["Mei Ling", "Ka Ming", "Chi Keung", "Wing Sze", "Ka Yan", "Ho Yin", "Wai Man", "Tsz Hin", "Hoi Ting", "Kwok Wah"];

const STREETS: &[&str] = &[
    "Nathan Road",
    "King's Road",
    "Castle Peak Road",
    "Shau Kei Wan Road",
    "Tai Po Road",
    "Ma On Shan Road",
    "Lung Cheung Road",
    "Tung Chung Road",
];
const ESTATES: &[&str] =
    &["Harbour View Court", "Garden Estate", "Sunrise Mansion", "Lok Fu Gardens", "Pine Terrace", "Tai Hing House"];

/// A citizen's account.
#[derive(Debug, Clone)]
pub struct Citizen {
    pub username: String,
    pub password: String,
    pub name: String,
    pub name_zh: String,
}

/// A department as it registers, and what it registered as.
#[derive(Debug, Clone)]
pub struct Department {
    pub name: String,
    pub name_zh: String,
    pub roles: Vec<&'static str>,
    pub contact: String,
}

/// A record as a holder deposits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: String,
    pub title: String,
    pub fields: Vec<(String, String)>,
    pub reference: String,
    pub note: String,
}

/// A consent request as a requesting department files it.
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: String,
    pub purpose: String,
    pub purpose_zh: String,
    pub case_note: String,
    pub days: u64,
}

/// A new citizen; `attempt` > 0 asks for a less common name after a clash.
pub fn citizen(rng: &mut Rng, attempt: u32) -> Citizen {
    let mut username = rng.user_name();
    if attempt > 0 {
        username.push_str(&rng.range(10, 10_000).to_string());
    }
    let (family, family_zh) = *rng.pick(FAMILY_ZH);
    let given = *rng.pick(GIVEN_EN);
    // Not everyone fills in the optional Chinese name.
    let name_zh = if rng.range(0, 4) == 0 { String::new() } else { format!("{family_zh}{}", rng.pick(GIVEN_ZH)) };
    Citizen { username, password: rng.password(), name: format!("{family} {given}"), name_zh }
}

fn contact(rng: &mut Rng, code: &str) -> String {
    match rng.range(0, 3) {
        0 => format!("{}@{}.gov.example", rng.user_name().replace(['.', '-'], "_"), code.to_lowercase()),
        1 => format!("Duty officer, {} {}", rng.range(2000, 3999), rng.range(1000, 9999)),
        _ => String::new(),
    }
}

fn pilot(rng: &mut Rng, name: &str) -> String {
    // A team piloting the gateway sometimes registers a unit of its own.
    match rng.range(0, 4) {
        0 => format!("{name} (Pilot)"),
        1 => format!("{name} {} Unit", rng.pick(&["Kowloon", "New Territories", "Hong Kong Island", "Digital"])),
        _ => name.to_owned(),
    }
}

/// A holder department; `both` also registers it as a requester.
pub fn holder(rng: &mut Rng, template: &Holder, both: bool) -> Department {
    let roles = if both { vec!["holder", "requester"] } else { vec!["holder"] };
    Department {
        name: pilot(rng, template.name),
        name_zh: if rng.range(0, 5) == 0 { String::new() } else { template.name_zh.to_owned() },
        roles,
        contact: contact(rng, template.code),
    }
}

/// A requesting department.
pub fn requester(rng: &mut Rng, template: &Requester) -> Department {
    let roles = if rng.range(0, 4) == 0 { vec!["holder", "requester"] } else { vec!["requester"] };
    Department {
        name: pilot(rng, template.name),
        name_zh: if rng.range(0, 5) == 0 { String::new() } else { template.name_zh.to_owned() },
        roles,
        contact: contact(rng, template.code),
    }
}

fn date(rng: &mut Rng, from: u64, to: u64) -> String {
    format!("{}-{:02}-{:02}", rng.range(from, to), rng.range(1, 13), rng.range(1, 29))
}

fn file_ref(rng: &mut Rng, code: &str) -> String {
    format!("{code}/{}/{:06}", rng.range(2019, 2026), rng.range(1, 999_999))
}

/// A record of `kind` as the holder with reference prefix `code` would deposit it.
pub fn record(rng: &mut Rng, kind: &str, code: &str) -> Record {
    let f = |k: &str, v: String| (k.to_owned(), v);
    let (title, fields): (&str, Vec<(String, String)>) = match kind {
        "address" => (
            "Registered residential address",
            vec![
                f(
                    "flat",
                    format!(
                        "Flat {}{}, {}/F",
                        rng.range(1, 40),
                        rng.pick(&["A", "B", "C", "D", "E"]),
                        rng.range(1, 45)
                    ),
                ),
                f("building", (*rng.pick(ESTATES)).to_owned()),
                f("street", format!("{} {}", rng.range(1, 600), rng.pick(STREETS))),
                f("district", (*rng.pick(DISTRICTS)).to_owned()),
                f("registered_on", date(rng, 2012, 2026)),
            ],
        ),
        "driving-licence" => (
            "Full driving licence",
            vec![
                f("licence_no", format!("DL{:08}", rng.range(1, 99_999_999))),
                f("classes", (*rng.pick(&["1", "1, 2", "1, 2, 3", "2"])).to_owned()),
                f("valid_until", date(rng, 2026, 2036)),
                f("points", rng.range(0, 12).to_string()),
            ],
        ),
        "tax-residency" => (
            "Certificate of resident status",
            vec![
                f("certificate_no", format!("CoR-{}", rng.hex(8).to_uppercase())),
                f("year_of_assessment", format!("{0}/{1}", rng.range(2019, 2025), rng.range(20, 27))),
                f("resident", "yes".to_owned()),
            ],
        ),
        "vaccination" => (
            "Vaccination record",
            vec![
                f("vaccine", (*rng.pick(&["Seasonal influenza", "Pneumococcal", "Hepatitis B", "MMR"])).to_owned()),
                f("doses", rng.range(1, 4).to_string()),
                f("last_dose", date(rng, 2020, 2026)),
                f("clinic", format!("{} Health Centre", rng.pick(DISTRICTS))),
            ],
        ),
        "qualification" => (
            "Academic qualification",
            vec![
                f(
                    "award",
                    (*rng.pick(&[
                        "Higher Diploma in Engineering",
                        "Bachelor of Social Sciences",
                        "Diploma of Secondary Education",
                        "Master of Public Administration",
                    ]))
                    .to_owned(),
                ),
                f(
                    "institution",
                    format!("{} College", rng.pick(&["Harbourside", "Lion Rock", "Kowloon Bay", "Tai Po"])),
                ),
                f("year", rng.range(1995, 2026).to_string()),
            ],
        ),
        "property" => (
            "Property ownership",
            vec![
                f(
                    "lot_no",
                    format!(
                        "{} Inland Lot No. {}",
                        rng.pick(&["Kowloon", "Sha Tin Town", "Tsuen Wan Town"]),
                        rng.range(100, 9999)
                    ),
                ),
                f("share", (*rng.pick(&["sole owner", "joint tenant", "tenant in common (1/2)"])).to_owned()),
                f("registered_on", date(rng, 1998, 2026)),
            ],
        ),
        "income" => (
            "Income assessment",
            vec![
                f("year_of_assessment", format!("{0}/{1}", rng.range(2019, 2025), rng.range(20, 27))),
                f("assessable_income", format!("HK${}", rng.range(120, 1_400) * 1000)),
                f("status", (*rng.pick(&["final", "provisional"])).to_owned()),
            ],
        ),
        _ => (
            "Marital status record",
            vec![
                f("status", (*rng.pick(&["single", "married", "divorced", "widowed"])).to_owned()),
                f("registered_on", date(rng, 1990, 2026)),
            ],
        ),
    };
    let note = match rng.range(0, 3) {
        0 => String::new(),
        1 => format!("Checked at the {} counter. {}", rng.pick(DISTRICTS), rng.sentence()),
        _ => rng.sentence(),
    };
    Record { kind: kind.to_owned(), title: title.to_owned(), fields, reference: file_ref(rng, code), note }
}

/// A record holding `flag`, in its reference or its note, the way a holder keeps a counter
/// verification code it should not.
pub fn flag_record(rng: &mut Rng, kind: &str, code: &str, flag: &str) -> Record {
    let mut record = record(rng, kind, code);
    if rng.range(0, 2) == 0 {
        record.reference = flag.to_owned();
    } else {
        let line = *rng.pick(&[
            "Counter verification code:",
            "One-time code for the citizen's collection slip:",
            "Supervisor override reference:",
        ]);
        record.note = format!("{line} {flag}. {}", rng.sentence());
    }
    record
}

/// A consent request for `kind` from `requester`, with an everyday case note.
pub fn request(rng: &mut Rng, requester: &Requester, kind: &str) -> Request {
    let (purpose, purpose_zh) = *rng.pick(requester.purposes);
    let case_note = match rng.range(0, 3) {
        0 => String::new(),
        1 => format!("Case {}; officer-in-charge ext. {}.", file_ref(rng, requester.code), rng.range(2000, 9999)),
        _ => format!("Case {}. {}", file_ref(rng, requester.code), rng.sentence()),
    };
    Request {
        kind: kind.to_owned(),
        purpose: purpose.to_owned(),
        purpose_zh: if rng.range(0, 4) == 0 { String::new() } else { purpose_zh.to_owned() },
        case_note,
        days: *rng.pick(&[30, 60, 90, 180, 365]),
    }
}

/// A consent request whose confidential case note holds `flag`.
pub fn flag_request(rng: &mut Rng, requester: &Requester, kind: &str, flag: &str) -> Request {
    let mut request = request(rng, requester, kind);
    let line = *rng.pick(&[
        "Access code for the case file:",
        "Referral password from the district office:",
        "Internal escalation key:",
    ]);
    request.case_note = format!("Case {}. {line} {flag}", file_ref(rng, requester.code));
    request
}

/// A record type other than `kind`, preferring the holder's own.
pub fn other_kind(rng: &mut Rng, holder: &Holder, kind: &str) -> String {
    let own: Vec<&str> = holder.types.iter().copied().filter(|t| *t != kind).collect();
    if !own.is_empty() && rng.range(0, 2) == 0 {
        return (*rng.pick(&own)).to_owned();
    }
    let others: Vec<&str> = RECORD_TYPES.iter().copied().filter(|t| *t != kind).collect();
    (*rng.pick(&others)).to_owned()
}

/// Escapes text for HTML the way the gateway's pages do (`&`, `<`, `>`, `"`, `'`).
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
    fn holders_hold_known_types() {
        for h in HOLDERS {
            assert!(h.types.iter().all(|t| RECORD_TYPES.contains(t)), "{}", h.name);
        }
    }

    #[test]
    fn flag_records_hold_the_flag_once() {
        let mut rng = Rng::new(5);
        for kind in RECORD_TYPES {
            let r = flag_record(&mut rng, kind, "RAR", "FLAG{abc}");
            let all = format!("{} {} {:?}", r.reference, r.note, r.fields);
            assert_eq!(all.matches("FLAG{abc}").count(), 1);
            assert!(r.fields.len() <= 16);
        }
    }

    #[test]
    fn other_kinds_differ() {
        let mut rng = Rng::new(8);
        for h in HOLDERS {
            for _ in 0..10 {
                assert_ne!(other_kind(&mut rng, h, h.types[0]), h.types[0]);
            }
        }
    }
}
