//! Connection admission: open connections counted in all and per source address, from accept
//! to close, for every server a drill exposes (the scoreboard's port, the TCP submission). Pure
//! counting; the servers own the sockets and say no in their own protocol.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// Which cap a refused connection hit, with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many open from this source address.
    Address(usize),
    /// Too many open in all.
    Total(usize),
}

/// Open connections in all and per source address.
#[derive(Debug, Clone)]
pub struct Admission {
    max_total: usize,
    max_per_address: usize,
    open: Arc<Mutex<Open>>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    /// Only sources with a connection open: an entry goes when its last connection closes, so
    /// the map is never larger than the connections.
    by_source: HashMap<IpAddr, usize>,
}

/// One admitted connection; gives its slots back when dropped (keep it with the socket).
#[derive(Debug)]
pub struct Admitted {
    open: Arc<Mutex<Open>>,
    source: IpAddr,
}

impl Admission {
    /// Caps of at least one each.
    pub fn new(max_total: usize, max_per_address: usize) -> Admission {
        Admission { max_total: max_total.max(1), max_per_address: max_per_address.max(1), open: Arc::default() }
    }

    /// Takes a slot for a connection from `ip`, or says which cap is full. A refusal takes
    /// nothing.
    pub fn try_admit(&self, ip: IpAddr) -> Result<Admitted, Refusal> {
        let source = source_of(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.max_total {
            return Err(Refusal::Total(self.max_total));
        }
        let count = open.by_source.get(&source).copied().unwrap_or(0);
        if count >= self.max_per_address {
            return Err(Refusal::Address(self.max_per_address));
        }
        open.total += 1;
        open.by_source.insert(source, count + 1);
        Ok(Admitted { open: self.open.clone(), source })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_source.get_mut(&self.source) {
            *count -= 1;
            if *count == 0 {
                open.by_source.remove(&self.source);
            }
        }
    }
}

/// The source an address counts as, for connection caps and the failure back-off alike: an
/// IPv4 address (also when it comes IPv4-mapped), or an IPv6 /64, since one IPv6 client
/// usually holds a whole /64.
pub fn source_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_counts_per_source_and_in_all_and_gives_slots_back() {
        let admission = Admission::new(3, 2);
        let (a, b, c) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let a1 = admission.try_admit(a).unwrap();
        let _a2 = admission.try_admit(a).unwrap();
        assert_eq!(admission.try_admit(a).unwrap_err(), Refusal::Address(2));
        let _b1 = admission.try_admit(b).unwrap();
        assert_eq!(admission.try_admit(c).unwrap_err(), Refusal::Total(3));
        drop(a1);
        let _c1 = admission.try_admit(c).unwrap();
        assert_eq!(admission.try_admit(a).unwrap_err(), Refusal::Total(3));
        // IPv4-mapped addresses count as the IPv4 address; an IPv6 client counts by its /64.
        assert_eq!(source_of("::ffff:127.0.0.2".parse().unwrap()), b);
        assert_eq!(source_of("2001:db8::1".parse().unwrap()), source_of("2001:db8::ffff:2".parse().unwrap()));
        assert_ne!(source_of("2001:db8::1".parse().unwrap()), source_of("2001:db8:0:1::1".parse().unwrap()));
    }
}
