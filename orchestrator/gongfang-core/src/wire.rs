//! Names on the wire that teams' own tools depend on: the platform, the agent and the docs
//! all use these, so they are spelled once.

/// The HTTP header that carries a team's token (`PUT /flags`, `/api/reports`), as
/// DestructiveFarm and ForcAD-style farms send it.
pub const TEAM_TOKEN_HEADER: &str = "X-Team-Token";

/// Most flags one `PUT /flags` request may carry, as DestructiveFarm sends them.
pub const MAX_FLAGS_PER_PUT: usize = 100;
