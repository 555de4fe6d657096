//! Seeded, realistic portal traffic: officers of real-sounding departments publishing the
//! kind of datasets a city government publishes, with plausible CSV rows, and notes.
//!
//! Everything comes from the action's [`Rng`], so a replayed action sends the same data, and
//! nothing repeats from tick to tick in a way a team could match on.

use gongfang_checker_sdk::Rng;
use gongfang_checker_sdk::random::DISTRICTS;

/// Departments as officers type them: English, Traditional Chinese, or both. Topics pick them
/// by position: transport, environment, food hygiene, buildings, digital policy, leisure and
/// culture, education, social welfare, statistics, water, trade, fire.
const DEPARTMENTS: &[(&str, &str)] = &[
    ("Transport Department", "運輸署"),
    ("Environmental Protection Department", "環境保護署"),
    ("Food and Environmental Hygiene Department", "食物環境衞生署"),
    ("Buildings Department", "屋宇署"),
    ("Digital Policy Office", "數字政策辦公室"),
    ("Leisure and Cultural Services Department", "康樂及文化事務署"),
    ("Education Bureau", "教育局"),
    ("Social Welfare Department", "社會福利署"),
    ("Census and Statistics Department", "政府統計處"),
    ("Water Supplies Department", "水務署"),
    ("Trade and Industry Department", "工業貿易署"),
    ("Fire Services Department", "消防處"),
];

const STREETS: &[&str] = &[
    "Nathan Road",
    "Hennessy Road",
    "Des Voeux Road Central",
    "Lockhart Road",
    "Castle Peak Road",
    "Waterloo Road",
    "Prince Edward Road West",
    "Tai Po Road",
    "Electric Road",
    "Ma Tau Wai Road",
];

const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// An officer's account.
#[derive(Debug, Clone)]
pub struct Account {
    pub username: String,
    pub password: String,
    pub department: String,
}

/// A dataset as the officer fills in the publish form.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub title: String,
    pub description: String,
    pub department: String,
    pub public: bool,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Dataset {
    /// The CSV text the officer uploads.
    pub fn csv(&self) -> String {
        let mut out = csv_line(&self.header);
        for row in &self.rows {
            out.push_str(&csv_line(row));
        }
        out
    }

    /// A word of the title to search for: its longest plain word.
    pub fn search_word(&self) -> &str {
        self.title
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| w.len() >= 4 && w.chars().all(|c| c.is_ascii_alphabetic()))
            .max_by_key(|w| w.len())
            .unwrap_or(&self.title)
    }
}

/// One CSV record (RFC 4180 quoting), ending in `\n`.
fn csv_line(fields: &[String]) -> String {
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| if f.contains([',', '"', '\n', '\r']) { format!("\"{}\"", f.replace('"', "\"\"")) } else { f.clone() })
        .collect();
    let mut line = quoted.join(",");
    line.push('\n');
    line
}

/// A department name as an officer would type it.
pub fn department(rng: &mut Rng) -> String {
    let (en, zh) = *rng.pick(DEPARTMENTS);
    match rng.range(0, 3) {
        0 => en.to_owned(),
        1 => zh.to_owned(),
        _ => format!("{zh} {en}"),
    }
}

/// A new officer; `attempt` > 0 asks for a less common name after a clash.
pub fn account(rng: &mut Rng, attempt: u32) -> Account {
    let mut username = rng.user_name();
    if attempt > 0 {
        username.push_str(&rng.range(10, 10_000).to_string());
    }
    Account { username, password: rng.password(), department: department(rng) }
}

fn date(rng: &mut Rng) -> String {
    format!("{}-{:02}-{:02}", rng.range(2022, 2026), rng.range(1, 13), rng.range(1, 29))
}

fn month(rng: &mut Rng) -> String {
    format!("{}-{:02}", rng.range(2022, 2026), rng.range(1, 13))
}

fn decimal(rng: &mut Rng, lo: u64, hi: u64, places: u32) -> String {
    let scale = 10u64.pow(places);
    let v = rng.range(lo * scale, hi * scale);
    format!("{}.{:0width$}", v / scale, v % scale, width = places as usize)
}

fn address(rng: &mut Rng) -> String {
    format!("{} {}", rng.range(1, 400), rng.pick(STREETS))
}

/// What a kind of dataset looks like: its title, columns and how a row is made.
struct Topic {
    title: &'static str,
    departments: &'static [usize],
    header: &'static [&'static str],
    row: fn(&mut Rng, &str) -> Vec<String>,
}

const TOPICS: &[Topic] = &[
    Topic {
        title: "Air Quality Readings",
        departments: &[1],
        header: &["date", "station", "pm2_5", "pm10", "o3_ppb"],
        row: |rng, district| {
            vec![
                date(rng),
                district.to_owned(),
                decimal(rng, 3, 60, 1),
                decimal(rng, 8, 120, 1),
                rng.range(10, 90).to_string(),
            ]
        },
    },
    Topic {
        title: "Bus Ridership by Route",
        departments: &[0],
        header: &["month", "route", "boardings", "on_time_pct"],
        row: |rng, _| {
            vec![
                month(rng),
                rng.range(1, 700).to_string(),
                rng.range(2_000, 90_000).to_string(),
                decimal(rng, 70, 99, 1),
            ]
        },
    },
    Topic {
        title: "Library Visits and Loans",
        departments: &[5, 6],
        header: &["branch", "month", "visitors", "loans"],
        row: |rng, district| {
            vec![
                format!("{district} Branch"),
                month(rng),
                rng.range(800, 40_000).to_string(),
                rng.range(300, 25_000).to_string(),
            ]
        },
    },
    Topic {
        title: "Public Wi-Fi Hotspots",
        departments: &[4],
        header: &["hotspot_id", "district", "address", "ssid", "status"],
        row: |rng, district| {
            let status = *rng.pick(&["active", "active", "active", "maintenance"]);
            vec![
                format!("WF-{}", rng.hex(6)),
                district.to_owned(),
                address(rng),
                "Wi-Fi.HK".to_owned(),
                status.to_owned(),
            ]
        },
    },
    Topic {
        title: "Car Park Occupancy",
        departments: &[0],
        header: &["car_park", "district", "capacity", "occupied", "updated_at"],
        row: |rng, district| {
            let capacity = rng.range(40, 900);
            vec![
                format!("{district} {} Car Park", rng.pick(&["Civic", "Market", "Station", "Park", "Stadium"])),
                district.to_owned(),
                capacity.to_string(),
                rng.range(0, capacity + 1).to_string(),
                format!("{}T{:02}:{:02}:00+08:00", date(rng), rng.range(6, 23), rng.range(0, 60)),
            ]
        },
    },
    Topic {
        title: "Building Permits Issued",
        departments: &[3],
        header: &["permit_no", "district", "use", "floors", "issued_on"],
        row: |rng, district| {
            let usage = *rng.pick(&["residential", "office", "retail", "mixed use", "school", "warehouse"]);
            vec![
                format!("{}-BP-{:05}", rng.range(2022, 2026), rng.range(1, 99_999)),
                district.to_owned(),
                usage.to_owned(),
                rng.range(1, 40).to_string(),
                date(rng),
            ]
        },
    },
    Topic {
        title: "River Water Quality Samples",
        departments: &[9, 1],
        header: &["site", "sample_date", "ph", "turbidity_ntu", "e_coli_cfu"],
        row: |rng, district| {
            let river = *rng.pick(&["Shing Mun River", "Lam Tsuen River", "Tuen Mun River", "Kam Tin River"]);
            vec![
                format!("{river} at {district}"),
                date(rng),
                decimal(rng, 6, 9, 2),
                decimal(rng, 1, 80, 1),
                rng.range(10, 20_000).to_string(),
            ]
        },
    },
    Topic {
        title: "Restaurant Hygiene Inspections",
        departments: &[2],
        header: &["inspection_id", "premises", "district", "result", "inspected_on"],
        row: |rng, district| {
            let kind = *rng.pick(&["Noodle House", "Tea Shop", "Dumpling Bar", "Bakery", "Hot Pot", "Cha Chaan Teng"]);
            let result = *rng.pick(&["pass", "pass", "pass", "follow-up", "fail"]);
            vec![
                format!("HI{}", rng.range(100_000, 999_999)),
                format!("{} {kind}", rng.user_name()),
                district.to_owned(),
                result.to_owned(),
                date(rng),
            ]
        },
    },
    Topic {
        title: "Fire Hydrant Inspections",
        departments: &[11],
        header: &["hydrant_id", "district", "address", "pressure_kpa", "checked_on"],
        row: |rng, district| {
            vec![
                format!("FH-{}", rng.range(10_000, 99_999)),
                district.to_owned(),
                address(rng),
                rng.range(150, 600).to_string(),
                date(rng),
            ]
        },
    },
];

/// A dataset a department would publish, public or private.
pub fn dataset(rng: &mut Rng, public: bool) -> Dataset {
    let topic = rng.pick(TOPICS);
    let district = *rng.pick(DISTRICTS);
    let (en, zh) = DEPARTMENTS[*rng.pick(topic.departments)];
    let department = match rng.range(0, 3) {
        0 => en.to_owned(),
        1 => zh.to_owned(),
        _ => format!("{zh} {en}"),
    };
    let year = rng.range(2022, 2026);
    let title = match rng.range(0, 3) {
        0 => format!("{}, {district} District, {year}", topic.title),
        1 => format!("{} ({} {year})", topic.title, rng.pick(MONTHS)),
        _ => format!("{year} {} — {district}", topic.title),
    };
    let description = format!(
        "{} Updated {}. Source: {en}.",
        rng.sentence(),
        *rng.pick(&["monthly", "weekly", "quarterly", "every working day"])
    );
    let n = rng.range(3, 14) as usize;
    let rows = (0..n).map(|_| (topic.row)(rng, district)).collect();
    Dataset {
        title: if public { title } else { format!("[Draft] {title}") },
        description,
        department,
        public,
        header: topic.header.iter().map(|h| (*h).to_owned()).collect(),
        rows,
    }
}

/// A private internal register holding `flag` in one of its first rows, as a department would
/// keep one before deciding what to publish.
pub fn private_register(rng: &mut Rng, flag: &str) -> Dataset {
    let (kind, header) = *rng.pick(&[
        ("Procurement Case Register", ["case_no", "opened", "district", "status", "reference"]),
        ("Internal Audit Findings", ["finding_no", "opened", "district", "severity", "reference"]),
        ("Incident Response Log", ["incident_no", "opened", "district", "state", "reference"]),
        ("Personnel Vetting Queue", ["request_no", "opened", "district", "stage", "reference"]),
    ]);
    let n = rng.range(3, 11) as usize;
    let flag_row = rng.range(0, n as u64) as usize;
    let rows = (0..n)
        .map(|i| {
            let status = *rng.pick(&["open", "in review", "closed", "escalated"]);
            let reference = if i == flag_row { flag.to_owned() } else { format!("REF-{}", rng.hex(12).to_uppercase()) };
            vec![
                format!("{}-{:04}", rng.range(2023, 2026), rng.range(1, 9999)),
                date(rng),
                (*rng.pick(DISTRICTS)).to_owned(),
                status.to_owned(),
                reference,
            ]
        })
        .collect();
    let department = department(rng);
    Dataset {
        title: format!("{kind} {} (internal)", rng.range(2023, 2026)),
        description: format!("Not for release. {}", rng.sentence()),
        department,
        public: false,
        header: header.iter().map(|h| (*h).to_owned()).collect(),
        rows,
    }
}

/// An everyday note: (title, body).
pub fn note(rng: &mut Rng) -> (String, String) {
    let title = match rng.range(0, 3) {
        0 => format!("Meeting with {} on {}", department(rng), date(rng)),
        1 => format!("To do before the {} release", rng.pick(MONTHS)),
        _ => format!("Call notes: {}", rng.user_name()),
    };
    (title, format!("{} {}", rng.sentence(), rng.sentence()))
}

/// A note holding `flag` the way an officer writes down a secret they should not.
pub fn secret_note(rng: &mut Rng, flag: &str) -> (String, String) {
    let (title, line) = *rng.pick(&[
        ("Vendor portal", "Access code for the vendor portal:"),
        ("Server room", "New door code for the server room:"),
        ("Dashboard login", "Shared password for the statistics dashboard:"),
        ("Embargoed release", "Embargo key for the next release:"),
    ]);
    (format!("{title} ({})", date(rng)), format!("{} {line} {flag}", rng.sentence()))
}

/// Escapes text for HTML the way the portal's pages do (`&`, `<`, `>`, `"`, `'`).
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
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_line(&["a".into(), "b, c".into(), "say \"hi\"".into()]), "a,\"b, c\",\"say \"\"hi\"\"\"\n");
    }

    #[test]
    fn registers_hold_the_flag_once() {
        let mut rng = Rng::new(9);
        let d = private_register(&mut rng, "FLAG{abc}");
        assert!(!d.public);
        assert_eq!(d.csv().matches("FLAG{abc}").count(), 1);
        assert!(d.rows.len() <= 10, "the flag must be within the preview's 10 rows");
    }

    #[test]
    fn search_words_are_plain() {
        let mut rng = Rng::new(3);
        for _ in 0..50 {
            let d = dataset(&mut rng, true);
            let w = d.search_word();
            assert!(w.len() >= 4 && d.title.contains(w), "{w:?} from {:?}", d.title);
        }
    }
}
