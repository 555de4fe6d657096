//! Seeded random data that looks like real users: names, passwords, sentences.
//!
//! Checker traffic that sends `aaaa`/`test123` every tick is trivial for a team to recognise
//! and treat specially; traffic that looks like people keeps the checker indistinguishable from
//! players. The generator is seeded from the action's seed, so a replayed action sends the
//! same data (handy when reading organisers' logs).

/// A small, fast, seeded generator (SplitMix64). Not for secrets.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

/// Hong Kong's eighteen districts, for addresses, clinics and counters in checkers' data.
pub const DISTRICTS: &[&str] = &[
    "Central and Western",
    "Wan Chai",
    "Eastern",
    "Southern",
    "Yau Tsim Mong",
    "Sham Shui Po",
    "Kowloon City",
    "Wong Tai Sin",
    "Kwun Tong",
    "Kwai Tsing",
    "Tsuen Wan",
    "Tuen Mun",
    "Yuen Long",
    "North",
    "Tai Po",
    "Sha Tin",
    "Sai Kung",
    "Islands",
];

const GIVEN: &[&str] = &[
    "mei", "wing", "ka", "chun", "siu", "hoi", "yan", "ming", "kit", "ling", "alex", "sam", "jo",
    "chris", "pat", "lee", "kai", "yu", "tin", "wai", "fung", "man", "ying", "hei", "lok", "on",
];
const FAMILY: &[&str] = &[
    "chan", "wong", "lee", "cheung", "lau", "ng", "ho", "leung", "lam", "tsang", "chow", "yip",
    "kwok", "lo", "tang", "mak", "fong", "siu", "choi", "yeung", "tse", "au", "poon", "ma",
];
const ADJECTIVES: &[&str] = &[
    "quiet", "bright", "early", "narrow", "busy", "green", "salty", "gentle", "late", "crowded",
    "old", "new", "rainy", "warm", "small", "steep", "hidden", "long", "cheerful", "patient",
];
const NOUNS: &[&str] = &[
    "harbour", "tram", "market", "ferry", "lantern", "office", "garden", "bridge", "library",
    "teahouse", "island", "street", "window", "kettle", "bicycle", "typhoon", "festival", "clerk",
    "neighbour", "report", "meeting", "printer", "notebook", "courier",
];
const VERBS: &[&str] = &[
    "keeps", "finds", "watches", "carries", "forgets", "opens", "repairs", "paints", "counts",
    "visits", "follows", "answers", "borrows", "sorts", "signs", "files",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
];

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi` (`hi` exclusive; `lo < hi`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo < hi, "empty range {lo}..{hi}");
        lo + self.next_u64() % (hi - lo)
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }

    /// A user name such as `mei.chan83` or `kwok_lok`.
    pub fn user_name(&mut self) -> String {
        let given = *self.pick(GIVEN);
        let family = *self.pick(FAMILY);
        match self.range(0, 4) {
            0 => format!("{given}.{family}{}", self.range(1, 100)),
            1 => format!("{family}_{given}"),
            2 => format!("{given}{family}{}", self.range(1970, 2010)),
            _ => format!("{given}-{family}-{}", self.range(10, 1000)),
        }
    }

    /// A password a careful user might choose: 12 to 16 letters, digits and a symbol.
    pub fn password(&mut self) -> String {
        const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        const SYMBOLS: &[u8] = b"!#%+-_.@";
        let len = self.range(12, 17) as usize;
        let symbol_at = self.range(0, len as u64) as usize;
        (0..len)
            .map(|i| if i == symbol_at { *self.pick(SYMBOLS) as char } else { *self.pick(CHARS) as char })
            .collect()
    }

    /// A short, plausible sentence such as "The rainy ferry keeps an old lantern."
    pub fn sentence(&mut self) -> String {
        let adjective = *self.pick(ADJECTIVES);
        let noun = *self.pick(NOUNS);
        let verb = *self.pick(VERBS);
        let object_adjective = *self.pick(ADJECTIVES);
        let object = *self.pick(NOUNS);
        let article = if object_adjective.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        format!("The {adjective} {noun} {verb} {article} {object_adjective} {object}.")
    }

    /// `n` lowercase hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from_digit(self.range(0, 16) as u32, 16).unwrap_or('0')).collect()
    }

    /// A common browser's `User-Agent`.
    pub fn user_agent(&mut self) -> &'static str {
        *self.pick(AGENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_data() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        assert_eq!(a.user_name(), b.user_name());
        assert_eq!(a.password(), b.password());
        assert_eq!(a.sentence(), b.sentence());
        assert_ne!(Rng::new(1).user_name(), Rng::new(2).user_name());
    }

    #[test]
    fn passwords_have_a_symbol() {
        let mut rng = Rng::new(7);
        for _ in 0..100 {
            let p = rng.password();
            assert!((12..=16).contains(&p.len()));
            assert!(p.chars().any(|c| "!#%+-_.@".contains(c)));
        }
    }
}
