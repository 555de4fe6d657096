//! The Gongfang checker SDK: everything a challenge author needs to write a checker as a
//! WebAssembly component, so that the checker itself is only the service's logic.
//!
//! A checker implements [`Checker`] and exports it with [`export_checker!`]:
//!
//! ```ignore
//! use gongfang_checker_sdk::{Checker, Ctx, Outcome, Planted, export_checker};
//!
//! struct Notes;
//!
//! impl Checker for Notes {
//!     const SERVICE: &'static str = "notes";
//!     const FLAG_STORES: u8 = 1;
//!     fn check(ctx: &Ctx) -> Outcome<()> { Ok(()) }
//!     fn put(ctx: &Ctx, store: u8, flag: &str) -> Outcome<Planted> { todo!() }
//!     fn get(ctx: &Ctx, store: u8, flag: &str, state: &[u8]) -> Outcome<()> { todo!() }
//! }
//!
//! export_checker!(Notes);
//! ```
//!
//! Failures are values: return [`Failure::down`], [`Failure::mumble`] or
//! [`Failure::corrupt`] (or let the `?` operator do it: the network helpers already turn I/O
//! errors into `down` and protocol surprises into `mumble`). A panic is a bug in the checker
//! and ends the action as `checker-error`, which never costs the team points.

pub mod flags;
pub mod http;
pub mod net;
pub mod random;

mod ctx;
mod outcome;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "checker",
        pub_export_macro: true,
        export_macro_name: "__export_checker_world",
        default_bindings_module: "::gongfang_checker_sdk::bindings",
    });
}

pub use ctx::Ctx;
pub use outcome::{Failure, Outcome, Planted, Status, bilingual};
pub use random::Rng;
/// The raw WASI 0.2 bindings, for checkers that need more than [`net`] and [`http`] offer.
pub use wasip2;

/// Appends a line to the action's private log, which only organisers see.
///
/// The host caps the total size of an action's log; a checker that writes more is stopped
/// with `checker-error`. Log what helps debugging a verdict, not every byte exchanged.
pub fn log(line: impl AsRef<str>) {
    bindings::gongfang::checker::host::log(line.as_ref());
}

/// `format!`-style [`log`].
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => { $crate::log(::std::format!($($arg)*)) };
}

/// A service's checker. Implement the required functions and export the type with
/// [`export_checker!`].
pub trait Checker {
    /// The service's name, as in the scenario.
    const SERVICE: &'static str;
    /// How many flag stores the service has; `put` and `get` receive `0..FLAG_STORES`.
    const FLAG_STORES: u8;
    /// Whether [`Checker::exploit`] is implemented.
    const HAS_EXPLOIT: bool = false;

    /// Exercises the service's normal features.
    fn check(ctx: &Ctx) -> Outcome<()>;

    /// Plants `flag` in flag store `store`.
    fn put(ctx: &Ctx, store: u8, flag: &str) -> Outcome<Planted>;

    /// Reads back `flag` from flag store `store`; `state` is what [`Checker::put`] returned.
    fn get(ctx: &Ctx, store: u8, flag: &str, state: &[u8]) -> Outcome<()>;

    /// The organisers' reference exploit: captures flags from flag store `store`, given the
    /// public `flag_id` that `put` published. Set [`Checker::HAS_EXPLOIT`] when implemented.
    fn exploit(ctx: &Ctx, store: u8, flag_id: &str) -> Outcome<Vec<String>> {
        let _ = (ctx, store, flag_id);
        Err(Failure::mumble("this checker has no exploit"))
    }
}

/// Exports a [`Checker`] implementation as the component's `checker` world.
#[macro_export]
macro_rules! export_checker {
    ($checker:ty) => {
        #[doc(hidden)]
        struct __GongfangCheckerExport;

        impl $crate::bindings::Guest for __GongfangCheckerExport {
            fn info() -> $crate::bindings::ServiceInfo {
                $crate::__glue::info::<$checker>()
            }
            fn check(ctx: $crate::bindings::Ctx) -> $crate::bindings::Verdict {
                $crate::__glue::check::<$checker>(ctx)
            }
            fn put(
                ctx: $crate::bindings::Ctx,
                store: u8,
                flag: ::std::string::String,
            ) -> $crate::bindings::PutResult {
                $crate::__glue::put::<$checker>(ctx, store, flag)
            }
            fn get(
                ctx: $crate::bindings::Ctx,
                store: u8,
                flag: ::std::string::String,
                state: ::std::vec::Vec<u8>,
            ) -> $crate::bindings::Verdict {
                $crate::__glue::get::<$checker>(ctx, store, flag, state)
            }
            fn exploit(
                ctx: $crate::bindings::Ctx,
                store: u8,
                flag_id: ::std::string::String,
            ) -> ::std::option::Option<$crate::bindings::ExploitResult> {
                $crate::__glue::exploit::<$checker>(ctx, store, flag_id)
            }
        }

        $crate::bindings::__export_checker_world!(__GongfangCheckerExport);
    };
}

/// Converts between the WIT types and the SDK's; used by [`export_checker!`].
#[doc(hidden)]
pub mod __glue {
    use crate::bindings::gongfang::checker::types as wit;
    use crate::{Checker, Ctx, Failure, Outcome, Status};

    fn verdict(outcome: Outcome<()>) -> wit::Verdict {
        match outcome {
            Ok(()) => wit::Verdict {
                status: wit::Status::Ok,
                public_message: String::new(),
                private_log: Vec::new(),
            },
            Err(failure) => failure.into_wit(),
        }
    }

    fn store_in_range<C: Checker>(store: u8) -> Outcome<()> {
        if store < C::FLAG_STORES {
            Ok(())
        } else {
            // The platform asked for a store the checker does not have: our mistake, not the
            // team's, so it must not become a team-blaming verdict.
            panic!("flag store {store} out of range: {} has {} stores", C::SERVICE, C::FLAG_STORES)
        }
    }

    pub fn info<C: Checker>() -> wit::ServiceInfo {
        wit::ServiceInfo {
            name: C::SERVICE.to_owned(),
            flag_stores: C::FLAG_STORES,
            has_exploit: C::HAS_EXPLOIT,
        }
    }

    pub fn check<C: Checker>(ctx: wit::Ctx) -> wit::Verdict {
        verdict(C::check(&Ctx::from_wit(ctx)))
    }

    pub fn put<C: Checker>(ctx: wit::Ctx, store: u8, flag: String) -> wit::PutResult {
        let result = store_in_range::<C>(store).and_then(|()| C::put(&Ctx::from_wit(ctx), store, &flag));
        match result {
            Ok(planted) => wit::PutResult {
                verdict: verdict(Ok(())),
                flag_id: planted.flag_id,
                state: planted.state,
            },
            Err(failure) => wit::PutResult { verdict: failure.into_wit(), flag_id: String::new(), state: Vec::new() },
        }
    }

    pub fn get<C: Checker>(ctx: wit::Ctx, store: u8, flag: String, state: Vec<u8>) -> wit::Verdict {
        let result = store_in_range::<C>(store).and_then(|()| C::get(&Ctx::from_wit(ctx), store, &flag, &state));
        verdict(result)
    }

    pub fn exploit<C: Checker>(ctx: wit::Ctx, store: u8, flag_id: String) -> Option<wit::ExploitResult> {
        if !C::HAS_EXPLOIT {
            return None;
        }
        let result = store_in_range::<C>(store).and_then(|()| C::exploit(&Ctx::from_wit(ctx), store, &flag_id));
        Some(match result {
            Ok(flags) => wit::ExploitResult { verdict: verdict(Ok(())), flags },
            Err(failure) => wit::ExploitResult { verdict: failure.into_wit(), flags: Vec::new() },
        })
    }

    impl Failure {
        fn into_wit(self) -> wit::Verdict {
            wit::Verdict {
                status: match self.status {
                    Status::Mumble => wit::Status::Mumble,
                    Status::Corrupt => wit::Status::Corrupt,
                    Status::Down => wit::Status::Down,
                },
                public_message: self.public,
                private_log: self.private,
            }
        }
    }
}
