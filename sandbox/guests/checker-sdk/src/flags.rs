//! Finds flags in whatever an exploit read: `PREFIX{32 base64url characters}`, where the
//! prefix is 1 to 16 of `A-Z`, `0-9`, `_`. An exploit does not know the drill's prefix, so it
//! takes every string of that shape. Every checker's `exploit` uses it on what it stole.

const BODY_LEN: usize = 32;
const MAX_PREFIX: usize = 16;

fn prefix_char(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
}

fn body_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Every distinct flag-shaped string in `text`, in order of first appearance.
pub fn find(text: &[u8]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for (open, _) in text.iter().enumerate().filter(|(_, b)| **b == b'{') {
        let close = open + 1 + BODY_LEN;
        if close >= text.len() || text[close] != b'}' || !text[open + 1..close].iter().all(|b| body_char(*b)) {
            continue;
        }
        let mut start = open;
        while start > 0 && open - start < MAX_PREFIX && prefix_char(text[start - 1]) {
            start -= 1;
        }
        if start == open {
            continue;
        }
        // Take the longest prefix the shape allows; a longer run means this is not a flag.
        if start > 0 && prefix_char(text[start - 1]) {
            continue;
        }
        let flag = String::from_utf8_lossy(&text[start..=close]).into_owned();
        if !found.contains(&flag) {
            found.push(flag);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::find;

    const BODY: &str = "AAAAAQABAQBa3-_xYz0123456789abcd";

    #[test]
    fn finds_flags_in_csv_json_and_text() {
        let a = format!("GONGFANG{{{BODY}}}");
        let b = format!("FLAG{{{}}}", BODY.replace('A', "B"));
        let text = format!("id,ref\n1,{a}\n2,\"x {b}\"\n3,{a}\n{{\"body\": \"code: {b}\"}}");
        assert_eq!(find(text.as_bytes()), vec![a, b]);
    }

    #[test]
    fn ignores_what_is_not_a_flag() {
        assert!(find(b"{}").is_empty());
        assert!(find(format!("{{{BODY}}}").as_bytes()).is_empty(), "no prefix");
        assert!(find(format!("flag{{{BODY}}}").as_bytes()).is_empty(), "lowercase prefix");
        assert!(find(format!("F{{{}}}", &BODY[1..]).as_bytes()).is_empty(), "short body");
        assert!(find(format!("ABCDEFGHIJKLMNOPQ{{{BODY}}}").as_bytes()).is_empty(), "prefix over 16");
    }
}
