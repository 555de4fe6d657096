//! The process's open-file limit, and the connection caps derived from it, so the servers
//! never accept more connections than the process can hold open.
//!
//! Every connection is a file descriptor, and so is every database connection, checker
//! socket, container log stream, compiled checker and listener. A server that hits the limit
//! fails its next `accept` *and* whatever else needed a descriptor at that moment: a commit of
//! flags, a checker's connect. So the binary raises its soft limit to the hard one at start
//! ([`raise_open_files`]), keeps a reserve for everything that is not a client connection, and
//! gives the rest to the servers' caps ([`ConnectionCaps::within`]). Connections over a cap are
//! refused at once, which costs a descriptor for microseconds only.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The most any soft limit is raised to when the hard limit is unlimited: Linux's default
/// `fs.nr_open`, above which `setrlimit` refuses.
const UNLIMITED_TARGET: u64 = 1 << 20;

/// Descriptors kept for everything that is not a client connection, at least: the database
/// pool, the checkers' sockets (each checker action may hold up to its `max_sockets`), the
/// container engine's connections and log streams, listeners, files.
const MIN_RESERVE: u64 = 256;
/// And at most; a quarter of the limit in between.
const MAX_RESERVE: u64 = 8_192;

/// Caps above which more connections would cost memory and scheduling rather than descriptors;
/// they match the servers' own defaults.
const MAX_HTTP: usize = 16_384;
const MAX_TCP: usize = 4_096;

/// The open-file limit before and after [`raise_open_files`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub before: u64,
    pub now: u64,
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard limit (or to [`UNLIMITED_TARGET`] when the hard
/// limit is unlimited), and says what it was and is.
pub fn raise_open_files() -> std::io::Result<OpenFiles> {
    let (before, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let target = if hard == nix::libc::RLIM_INFINITY { UNLIMITED_TARGET.max(before) } else { hard };
    if target > before {
        setrlimit(Resource::RLIMIT_NOFILE, target, hard)?;
    }
    let (now, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    Ok(OpenFiles { before, now, hard })
}

/// The current soft open-file limit.
pub fn open_files() -> std::io::Result<u64> {
    Ok(getrlimit(Resource::RLIMIT_NOFILE)?.0)
}

/// How many connections each server may hold open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// HTTP connections of the scoreboard's port, websockets included.
    pub http: usize,
    /// Of those, websockets: three quarters, so the page and the API stay reachable when the
    /// live feed is full.
    pub websockets: usize,
    /// TCP flag submission connections.
    pub tcp: usize,
    /// Descriptors left for everything else.
    pub reserve: u64,
}

impl ConnectionCaps {
    /// Caps that, with the reserve, fit within `open_files` descriptors: the reserve first,
    /// then half of the rest each for HTTP and TCP, at most the servers' defaults.
    pub fn within(open_files: u64) -> ConnectionCaps {
        let reserve = (open_files / 4).clamp(MIN_RESERVE, MAX_RESERVE).min(open_files / 2);
        let share = usize::try_from((open_files - reserve) / 2).unwrap_or(usize::MAX);
        let http = share.clamp(1, MAX_HTTP);
        let tcp = share.clamp(1, MAX_TCP);
        ConnectionCaps { http, websockets: (http / 4 * 3).max(1), tcp, reserve }
    }

    /// Caps for each of `listeners` ports serving the same clients (e.g. the loopback port and
    /// the WireGuard gateway's), so that together they still fit the limit.
    pub fn shared_by(self, listeners: usize) -> ConnectionCaps {
        let n = listeners.max(1);
        ConnectionCaps {
            http: (self.http / n).max(1),
            websockets: (self.websockets / n).max(1),
            tcp: (self.tcp / n).max(1),
            reserve: self.reserve,
        }
    }

    /// The caps for this process's current open-file limit; if it cannot be read, for the
    /// usual default of 1024, which is safe wherever the limit is at least that.
    pub fn for_this_process() -> ConnectionCaps {
        match open_files() {
            Ok(limit) => ConnectionCaps::within(limit),
            Err(error) => {
                tracing::warn!(%error, "cannot read the open-file limit; capping connections as for 1024");
                ConnectionCaps::within(1024)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_shared_by_two_ports_add_up_to_no_more_than_one() {
        let whole = ConnectionCaps::within(65_536);
        let half = whole.shared_by(2);
        assert!(half.http * 2 <= whole.http && half.http * 2 + 1 >= whole.http);
        assert!(half.tcp * 2 <= whole.tcp && half.websockets * 2 <= whole.websockets);
        assert_eq!(whole.shared_by(1), whole);
        assert_eq!(ConnectionCaps::within(1).shared_by(8).tcp, 1, "never a cap of zero");
    }

    #[test]
    fn caps_and_reserve_fit_under_the_limit() {
        for limit in [16, 256, 1024, 4096, 65_536, 1 << 20, u64::MAX] {
            let caps = ConnectionCaps::within(limit);
            let used = caps.reserve as u128 + caps.http as u128 + caps.tcp as u128;
            assert!(used <= u128::from(limit), "{limit}: {caps:?}");
            assert!(caps.websockets < caps.http || caps.http == 1, "{limit}: {caps:?}");
            assert!(caps.reserve >= (limit / 2).min(MIN_RESERVE), "{limit}: {caps:?}");
        }
    }

    #[test]
    fn the_usual_limits_give_these_caps() {
        // A shell's default soft limit.
        assert_eq!(ConnectionCaps::within(1024), ConnectionCaps { http: 384, websockets: 288, tcp: 384, reserve: 256 });
        // systemd's default hard limit, which the binary raises to: the servers' defaults.
        assert_eq!(
            ConnectionCaps::within(524_288),
            ConnectionCaps { http: MAX_HTTP, websockets: 12_288, tcp: MAX_TCP, reserve: MAX_RESERVE }
        );
    }

    #[test]
    fn raising_reaches_the_hard_limit_and_the_caps_fit_under_it() {
        let raised = raise_open_files().unwrap();
        assert!(raised.now >= raised.before, "{raised:?}");
        if raised.hard != nix::libc::RLIM_INFINITY {
            assert_eq!(raised.now, raised.hard);
        }
        assert_eq!(open_files().unwrap(), raised.now);
        let caps = ConnectionCaps::for_this_process();
        assert!(caps.reserve + caps.http as u64 + caps.tcp as u64 <= raised.now, "{caps:?}");
    }
}
