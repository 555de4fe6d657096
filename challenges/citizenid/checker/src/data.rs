//! Seeded, realistic CityPass traffic: Hong Kong citizens with English and Chinese names,
//! identity card numbers in CityPass's format, mobile numbers, the documents people keep in a
//! data wallet, the papers they sign, and the e-services that ask them to log in.
//!
//! Everything comes from the action's [`Rng`], so a replayed action sends the same data, and
//! nothing repeats from tick to tick in a way a team could match on.

use gongfang_checker_sdk::Rng;
use gongfang_checker_sdk::random::DISTRICTS;

const FAMILY: &[(&str, &str)] = &[
    ("CHAN", "陳"),
    ("WONG", "黃"),
    ("LEE", "李"),
    ("CHEUNG", "張"),
    ("LAU", "劉"),
    ("NG", "吳"),
    ("HO", "何"),
    ("LEUNG", "梁"),
    ("LAM", "林"),
    ("TSANG", "曾"),
    ("CHOW", "周"),
    ("YIP", "葉"),
    ("KWOK", "郭"),
    ("TANG", "鄧"),
    ("MAK", "麥"),
    ("FONG", "方"),
    ("CHOI", "蔡"),
    ("YEUNG", "楊"),
];

const GIVEN: &[(&str, &str)] = &[
    ("Tai", "大"),
    ("Man", "文"),
    ("Siu", "小"),
    ("Ming", "明"),
    ("Wing", "詠"),
    ("Ka", "嘉"),
    ("Yan", "欣"),
    ("Chun", "俊"),
    ("Hoi", "凱"),
    ("Ling", "玲"),
    ("Kit", "傑"),
    ("Mei", "美"),
    ("Wai", "偉"),
    ("Fung", "峰"),
    ("Ying", "瑩"),
    ("Lok", "樂"),
    ("Sze", "詩"),
    ("Hei", "曦"),
];

const ENGLISH_NAMES: &[&str] =
    &["Alex", "Karen", "Peter", "Joyce", "Kelvin", "Mandy", "Vincent", "Iris", "Jason", "Cherry"];

const STREETS: &[&str] = &[
    "Nathan Road",
    "Hennessy Road",
    "King's Road",
    "Castle Peak Road",
    "Waterloo Road",
    "Tai Po Road",
    "Electric Road",
    "Shau Kei Wan Road",
    "Lung Cheung Road",
    "Sha Tsui Road",
];

/// The wallet kinds the service knows, as its scopes name them (`wallet.KIND`).
pub const WALLET_KINDS: &[&str] = &["address", "education", "vaccination", "licence"];

/// A citizen as they fill in the registration form.
#[derive(Debug, Clone)]
pub struct Citizen {
    pub name: String,
    pub name_zh: String,
    pub id_number: String,
    pub phone: String,
    pub password: String,
}

/// The check character of a CityPass-format identity number: weights 8 to 2 over the letter
/// (A = 10) and six digits, times 3 plus 5, mod 11, with 10 written `A`.
pub fn check_char(letter: u8, digits: &[u8; 6]) -> char {
    let mut total = (letter - b'A' + 10) as u32 * 8;
    for (d, w) in digits.iter().zip((2..=7).rev()) {
        total += (d - b'0') as u32 * w;
    }
    match (total * 3 + 5) % 11 {
        10 => 'A',
        n => char::from_digit(n, 10).unwrap_or('0'),
    }
}

/// A fresh identity card number such as `K482913(9)`.
pub fn id_number(rng: &mut Rng) -> String {
    let letter = b'A' + rng.range(0, 26) as u8;
    let mut digits = [0u8; 6];
    for d in digits.iter_mut() {
        *d = b'0' + rng.range(0, 10) as u8;
    }
    let check = check_char(letter, &digits);
    format!("{}{}({check})", letter as char, String::from_utf8_lossy(&digits))
}

fn phone(rng: &mut Rng) -> String {
    let first = *rng.pick(&["5", "6", "9"]);
    let (a, b) = (rng.range(100, 1000), rng.range(0, 10_000));
    match rng.range(0, 3) {
        0 => format!("+852 {first}{a} {b:04}"),
        1 => format!("{first}{a}{b:04}"),
        _ => format!("+852{first}{a}{b:04}"),
    }
}

/// A new citizen.
pub fn citizen(rng: &mut Rng) -> Citizen {
    let (family, family_zh) = *rng.pick(FAMILY);
    let (g1, g1_zh) = *rng.pick(GIVEN);
    let (g2, g2_zh) = *rng.pick(GIVEN);
    let name = match rng.range(0, 3) {
        0 => format!("{family} {g1} {g2}"),
        1 => format!("{family} {g1} {}", g2.to_lowercase()),
        _ => format!("{family} {g1} {g2}, {}", rng.pick(ENGLISH_NAMES)),
    };
    // Some leave the Chinese name out: it is optional.
    let name_zh = if rng.range(0, 8) == 0 { String::new() } else { format!("{family_zh}{g1_zh}{g2_zh}") };
    Citizen { name, name_zh, id_number: id_number(rng), phone: phone(rng), password: rng.password() }
}

fn date(rng: &mut Rng, from: u64, to: u64) -> String {
    format!("{}-{:02}-{:02}", rng.range(from, to), rng.range(1, 13), rng.range(1, 29))
}

fn address(rng: &mut Rng) -> String {
    format!(
        "Flat {}{}, {}/F, {} {}, {}",
        rng.range(1, 40),
        (b'A' + rng.range(0, 8) as u8) as char,
        rng.range(1, 60),
        rng.range(1, 400),
        rng.pick(STREETS),
        rng.pick(DISTRICTS)
    )
}

/// Something a citizen keeps in the data wallet.
#[derive(Debug, Clone)]
pub struct WalletItem {
    pub kind: &'static str,
    pub title: String,
    pub issuer: String,
    pub content: String,
}

/// A wallet item of `kind` (or of any kind).
pub fn wallet_item(rng: &mut Rng, kind: Option<&'static str>) -> WalletItem {
    let kind = kind.unwrap_or_else(|| *rng.pick(WALLET_KINDS));
    let (title, issuer, content) = match kind {
        "address" => {
            let (what, issuer) = *rng.pick(&[
                ("Electricity bill", "Harbour Light & Power Company"),
                ("Water bill", "Water Supplies Department"),
                ("Bank statement", "Victoria Commercial Bank"),
                ("Rates demand note", "Rating and Valuation Department"),
            ]);
            let month = date(rng, 2024, 2026);
            (
                format!("{what} ({})", &month[..7]),
                issuer.to_owned(),
                format!("{}. Account {}-{:06}.", address(rng), rng.range(1000, 9999), rng.range(0, 1_000_000)),
            )
        }
        "education" => {
            let (award, school) = *rng.pick(&[
                ("Higher Diploma in Applied Computing", "Kowloon Institute of Vocational Studies"),
                ("Bachelor of Social Sciences", "Harbourside University"),
                ("Diploma of Secondary Education", "Territory Examinations Authority"),
                ("Master of Public Administration", "Lion Rock University"),
                ("Certificate in Food Hygiene", "Institute of Catering Trades"),
            ]);
            let grade = *rng.pick(&["Distinction", "Credit", "Pass", "First Class Honours", "Second Class Honours"]);
            (
                award.to_owned(),
                school.to_owned(),
                format!(
                    "Awarded {}; certificate no. ED{}; result: {grade}.",
                    date(rng, 2005, 2025),
                    rng.range(100_000, 999_999)
                ),
            )
        }
        "vaccination" => {
            let vaccine =
                *rng.pick(&["Seasonal influenza", "COVID-19", "Hepatitis B", "Measles, mumps and rubella", "Tetanus"]);
            let clinic = *rng.pick(DISTRICTS);
            (
                format!("{vaccine} vaccination"),
                "Department of Community Health".to_owned(),
                format!(
                    "Dose {} on {} at {clinic} Community Clinic; batch {}{}.",
                    rng.range(1, 4),
                    date(rng, 2021, 2026),
                    (b'A' + rng.range(0, 26) as u8) as char,
                    rng.range(10_000, 99_999)
                ),
            )
        }
        _ => {
            let (licence, issuer, no) = *rng.pick(&[
                ("Full driving licence", "Road Licensing Office", "DL"),
                ("Fishing licence", "Marine Parks Office", "FL"),
                ("Pleasure vessel operator licence", "Marine Parks Office", "PV"),
                ("Food business licence", "Food Safety Licensing Office", "FB"),
            ]);
            (
                licence.to_owned(),
                issuer.to_owned(),
                format!("Licence no. {no}{}; valid until {}.", rng.range(1_000_000, 9_999_999), date(rng, 2026, 2034)),
            )
        }
    };
    WalletItem { kind, title, issuer, content }
}

/// A wallet item that holds `flag`, as a reference number people copy into their records.
pub fn secret_wallet_item(rng: &mut Rng, flag: &str) -> WalletItem {
    let mut item = wallet_item(rng, None);
    let label = match item.kind {
        "address" => "Verification code",
        "education" => "Transcript access key",
        "vaccination" => "Record reference",
        _ => "Renewal PIN",
    };
    item.content = format!("{} {label}: {flag}", item.content);
    item
}

/// A document a citizen signs.
#[derive(Debug, Clone)]
pub struct Document {
    pub title: String,
    pub content: String,
}

/// An everyday document for `signer`.
pub fn document(rng: &mut Rng, signer: &Citizen) -> Document {
    let when = date(rng, 2025, 2027);
    let (title, body) = match rng.range(0, 4) {
        0 => (
            format!("Tenancy agreement, {}", rng.pick(DISTRICTS)),
            format!(
                "The tenant, {}, agrees to rent {} from {when} for {} months at HK${} a month.",
                signer.name,
                address(rng),
                rng.range(12, 37),
                rng.range(80, 400) * 100
            ),
        ),
        1 => (
            "Consent for school outing".to_owned(),
            format!(
                "I, {}, consent to my child joining the Primary {} outing to {} on {when}.",
                signer.name,
                rng.range(1, 7),
                rng.pick(&["the Wetland Park", "the Science Museum", "Ocean Park", "the Hong Kong Heritage Museum"])
            ),
        ),
        2 => (
            format!("Application for public rental housing ({})", rng.range(2025, 2027)),
            format!(
                "Applicant {} declares a household of {} and a monthly income of HK${}.",
                signer.name,
                rng.range(1, 6),
                rng.range(80, 400) * 100
            ),
        ),
        _ => (
            "Authorisation letter".to_owned(),
            format!(
                "I, {}, authorise {} to collect my {} on {when}.",
                signer.name,
                rng.user_name(),
                rng.pick(&["registered mail", "identity card", "licence renewal", "medical report"])
            ),
        ),
    };
    let mut content = body;
    for _ in 0..rng.range(0, 3) {
        content.push('\n');
        content.push_str(&rng.sentence());
    }
    content.push_str(&format!("\nSigned by {} on {}.", signer.name, date(rng, 2025, 2027)));
    Document { title, content }
}

/// A private declaration that holds `flag`.
pub fn secret_document(rng: &mut Rng, signer: &Citizen, flag: &str) -> Document {
    let (title, line) = *rng.pick(&[
        ("Statutory declaration", "Declaration serial"),
        ("Power of attorney", "Instrument number"),
        ("Loan guarantee", "Guarantee reference"),
        ("Will and testament", "Registry code"),
    ]);
    Document {
        title: format!("{title} ({})", date(rng, 2025, 2027)),
        content: format!(
            "I, {}, declare as follows. {}\n{line}: {flag}\n{}",
            signer.name,
            rng.sentence(),
            rng.sentence()
        ),
    }
}

/// An e-service that relies on CityPass for its log-in.
#[derive(Debug, Clone)]
pub struct RelyingService {
    pub name: String,
    pub redirect_uri: String,
}

pub fn relying_service(rng: &mut Rng) -> RelyingService {
    let (name, host) = *rng.pick(&[
        ("Leisure Venue Bookings 康體場地預訂", "bookings.leisure-services.example"),
        ("Public Library e-Services 公共圖書館電子服務", "elibrary.city-libraries.example"),
        ("Housing Applications 房屋申請", "apply.housing-office.example"),
        ("Tax e-Filing 電子報稅", "efiling.revenue-office.example"),
        ("Clinic Appointments 診所預約", "booking.community-health.example"),
        ("Road Licensing e-Renewal 牌照續期", "renew.road-licensing.example"),
    ]);
    let path = *rng.pick(&["/citypass/callback", "/oauth/callback", "/login/citypass", "/auth/return"]);
    RelyingService { name: name.to_owned(), redirect_uri: format!("https://{host}{path}") }
}

/// The scopes a relying service asks for: always `openid`, some of the rest.
pub fn scopes(rng: &mut Rng) -> Vec<String> {
    let mut out = vec!["openid".to_owned()];
    for s in ["profile", "phone", "idno"] {
        if rng.range(0, 2) == 0 {
            out.push(s.to_owned());
        }
    }
    for kind in WALLET_KINDS {
        if rng.range(0, 3) == 0 {
            out.push(format!("wallet.{kind}"));
        }
    }
    out
}

/// A random value for `state` or `nonce`.
pub fn opaque(rng: &mut Rng) -> String {
    let len = rng.range(12, 33) as usize;
    rng.hex(len)
}

/// Escapes text for HTML the way the service's pages do (Python's `html.escape`).
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
    fn identity_numbers_carry_their_check_character() {
        assert_eq!(check_char(b'K', b"482913"), '9');
        assert_eq!(check_char(b'K', b"482915"), 'A');
        let mut rng = Rng::new(5);
        for _ in 0..50 {
            let n = id_number(&mut rng);
            assert_eq!(n.len(), 10, "{n}");
            let digits: [u8; 6] = n.as_bytes()[1..7].try_into().unwrap();
            assert_eq!(n.chars().nth(8), Some(check_char(n.as_bytes()[0], &digits)));
        }
    }

    #[test]
    fn secret_items_hold_the_flag_once() {
        let mut rng = Rng::new(11);
        let c = citizen(&mut rng);
        assert_eq!(secret_wallet_item(&mut rng, "FLAG{x}").content.matches("FLAG{x}").count(), 1);
        assert_eq!(secret_document(&mut rng, &c, "FLAG{x}").content.matches("FLAG{x}").count(), 1);
    }
}
