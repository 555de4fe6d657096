//! The labels every object of a drill carries: how reconcile finds, adopts and removes them.

use std::collections::HashMap;

pub const DRILL: &str = "gongfang.drill";
pub const TEAM: &str = "gongfang.team";
pub const SERVICE: &str = "gongfang.service";
/// `main` for the service's own container, else the sidecar's name.
pub const COMPONENT: &str = "gongfang.component";
/// A digest of everything the object was created from; a different digest means stale.
pub const CONFIG_HASH: &str = "gongfang.config-hash";

/// The engine filter that selects every object of `drill`.
pub fn drill_filter(drill: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), vec![format!("{DRILL}={drill}")])])
}
