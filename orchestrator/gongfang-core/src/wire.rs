//! Names on the wire that teams' own tools depend on: the platform, the agent and the docs
//! all use these, so they are spelled once.

/// The HTTP header that carries a team's token (`PUT /flags`, `/api/reports`), as
/// DestructiveFarm and ForcAD-style farms send it.
pub const TEAM_TOKEN_HEADER: &str = "X-Team-Token";

/// Most flags one `PUT /flags` request may carry, as DestructiveFarm sends them.
pub const MAX_FLAGS_PER_PUT: usize = 100;

/// The cookie that carries a browser session (the portal, the console): HttpOnly, SameSite
/// Strict, Secure over HTTPS.
pub const SESSION_COOKIE: &str = "gongfang_session";

/// The header a page sends its session's CSRF token in with every change it asks for.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// The value of cookie `name` in a `Cookie` header (`a=1; b=2`), if it is there.
pub fn cookie<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(n, _)| *n == name).map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_found_by_its_exact_name() {
        assert_eq!(cookie("a=1; gongfang_session=abc ; b=2", SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie("xgongfang_session=abc", SESSION_COOKIE), None);
        assert_eq!(cookie("", SESSION_COOKIE), None);
        assert_eq!(cookie("gongfang_session", SESSION_COOKIE), None);
    }
}
