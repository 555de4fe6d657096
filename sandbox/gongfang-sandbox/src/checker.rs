//! One loaded checker and its actions: a fresh store per action, the limits armed, the guest
//! called, and whatever happened turned into an [`ActionOutcome`].

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gongfang_core::action::CHECKER_ERROR_MESSAGE;
use gongfang_core::{Action, ActionCtx, ActionOutcome, CheckerFault, StoreIdx, Target, Verdict};
use wasmtime::component::{Component, ResourceTableError};
use wasmtime::{Store, UpdateDeadline};

use crate::state::ActionState;
use crate::state::bindings::gongfang::checker::types as wit;
use crate::state::bindings::{Checker as Bindings, CheckerPre};
use crate::{Inner, SandboxError};

/// What a checker says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerInfo {
    pub service: String,
    pub flag_stores: u8,
    pub has_exploit: bool,
}

/// A loaded checker, pre-linked and ready to instantiate. Cheap to clone; safe to use from
/// many tasks at once (every action has its own store).
#[derive(Clone)]
pub struct Checker {
    inner: Arc<Inner>,
    name: Arc<str>,
    pre: CheckerPre<ActionState>,
}

impl fmt::Debug for Checker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checker").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Which export to call, with its arguments.
enum Call {
    Info,
    Check(wit::Ctx),
    Put(wit::Ctx, u8, String),
    Get(wit::Ctx, u8, String, Vec<u8>),
    Exploit(wit::Ctx, u8, String),
}

impl Call {
    async fn invoke(self, bindings: &Bindings, store: &mut Store<ActionState>) -> wasmtime::Result<Returned> {
        Ok(match self {
            Call::Info => Returned::Info(bindings.call_info(store).await?),
            Call::Check(ctx) => Returned::Verdict(bindings.call_check(store, &ctx).await?),
            Call::Put(ctx, idx, flag) => Returned::Put(bindings.call_put(store, &ctx, idx, &flag).await?),
            Call::Get(ctx, idx, flag, state) => {
                Returned::Verdict(bindings.call_get(store, &ctx, idx, &flag, &state).await?)
            }
            Call::Exploit(ctx, idx, flag_id) => {
                Returned::Exploit(bindings.call_exploit(store, &ctx, idx, &flag_id).await?)
            }
        })
    }
}

/// What the guest returned, before the limits on sizes are checked.
enum Returned {
    Verdict(wit::Verdict),
    Put(wit::PutResult),
    Exploit(Option<wit::ExploitResult>),
    Info(wit::ServiceInfo),
}

impl Checker {
    pub(crate) fn new(inner: Arc<Inner>, name: &str, component: &Component) -> Result<Checker, SandboxError> {
        let link_err = |e: wasmtime::Error| SandboxError::Link { path: name.to_owned(), message: format!("{e:#}") };
        let instance_pre = inner.linker.instantiate_pre(component).map_err(link_err)?;
        let pre = CheckerPre::new(instance_pre).map_err(link_err)?;
        Ok(Checker { inner, name: name.into(), pre })
    }

    /// The component's name (its path when loaded from a file).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Asks the checker which service it is for and how many flag stores it has.
    pub async fn info(&self) -> Result<CheckerInfo, SandboxError> {
        let target = Target { address: IpAddr::from([127, 0, 0, 1]), ports: Vec::new() };
        let (returned, state, _) = self.run(&target, Call::Info).await;
        match returned {
            Ok(Returned::Info(info)) => {
                Ok(CheckerInfo { service: info.name, flag_stores: info.flag_stores, has_exploit: info.has_exploit })
            }
            Ok(_) => unreachable!("info returns info"),
            Err(fault) => Err(SandboxError::Checker(state.and_then(|s| s.fault).unwrap_or(fault))),
        }
    }

    /// Exercises the service's normal features.
    pub async fn check(&self, target: &Target, ctx: &ActionCtx) -> ActionOutcome {
        let wctx = wit_ctx(target, ctx);
        self.action(Action::Check, target, Call::Check(wctx)).await
    }

    /// Plants `flag` in flag store `store`.
    pub async fn put(&self, target: &Target, ctx: &ActionCtx, store: StoreIdx, flag: &str) -> ActionOutcome {
        let wctx = wit_ctx(target, ctx);
        self.action(Action::Put, target, Call::Put(wctx, store.0, flag.to_owned())).await
    }

    /// Reads back `flag` from flag store `store`, with the state `put` returned.
    pub async fn get(
        &self,
        target: &Target,
        ctx: &ActionCtx,
        store: StoreIdx,
        flag: &str,
        state: &[u8],
    ) -> ActionOutcome {
        let wctx = wit_ctx(target, ctx);
        self.action(Action::Get, target, Call::Get(wctx, store.0, flag.to_owned(), state.to_vec())).await
    }

    /// Runs the reference exploit against flag store `store`, given the public `flag_id`.
    pub async fn exploit(&self, target: &Target, ctx: &ActionCtx, store: StoreIdx, flag_id: &str) -> ActionOutcome {
        let wctx = wit_ctx(target, ctx);
        self.action(Action::Exploit, target, Call::Exploit(wctx, store.0, flag_id.to_owned())).await
    }

    async fn action(&self, action: Action, target: &Target, call: Call) -> ActionOutcome {
        let (returned, state, duration) = self.run(target, call).await;
        let limits = &self.inner.config.limits;
        let mut outcome = ActionOutcome {
            action,
            verdict: Verdict::CheckerError,
            public_message: String::new(),
            private_log: Vec::new(),
            flag_id: None,
            state: None,
            flags: Vec::new(),
            duration,
            fault: None,
        };
        let (log, log_bytes, violation, recorded) = match state {
            Some(s) => {
                let violation = s.violation();
                (s.log, s.log_bytes, violation, s.fault)
            }
            None => (Vec::new(), 0, None, None),
        };
        outcome.private_log = log;
        let result = match returned {
            // A fault the host recorded (limit, CPU) explains the trap better than the trap.
            Err(fault) => Err(recorded.unwrap_or(fault)),
            Ok(returned) => accept(&mut outcome, returned, limits, log_bytes),
        };
        // Trying a forbidden address makes the whole action untrustworthy, whatever the
        // checker concluded afterwards.
        let result = match violation {
            Some((addr, usage)) => Err(CheckerFault::ForbiddenNetwork { addr, usage }),
            None => result,
        };
        if let Err(fault) = result {
            tracing::warn!(checker = %self.name, %action, %fault, "checker error");
            outcome.verdict = Verdict::CheckerError;
            outcome.public_message = CHECKER_ERROR_MESSAGE.to_owned();
            outcome.private_log.push(format!("checker-error: {fault}"));
            outcome.flag_id = None;
            outcome.state = None;
            outcome.flags.clear();
            outcome.fault = Some(fault);
        }
        outcome
    }

    /// Instantiates the component in a fresh store with every limit armed, runs `call`, and
    /// tears the store down. Returns what the guest returned (or why it did not), the store's
    /// data when the store survived, and the elapsed time.
    async fn run(
        &self,
        target: &Target,
        call: Call,
    ) -> (Result<Returned, CheckerFault>, Option<ActionState>, Duration) {
        let started = Instant::now();
        let limits = &self.inner.config.limits;
        let mut store = Store::new(&self.inner.engine, ActionState::new(target, limits));
        store.limiter(|s| s);
        let tick = self.inner.config.epoch_tick.max(Duration::from_micros(100));
        let cpu_ticks = (limits.cpu_time.as_nanos() / tick.as_nanos()).max(1) as u64;
        let cpu_limit = limits.cpu_time;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut cx| {
            let state = cx.data_mut();
            state.cpu_ticks += 1;
            if state.cpu_ticks > cpu_ticks {
                state.fault = Some(CheckerFault::CpuLimit { limit: cpu_limit });
                wasmtime::bail!("checker exceeded its CPU time of {cpu_limit:?}");
            }
            // Yield to the executor every tick: a guest spinning in its own code must not
            // starve other tasks, and the wall-clock timeout needs a turn to fire.
            Ok(UpdateDeadline::Yield(1))
        });

        let pre = self.pre.clone();
        let work = async {
            let bindings = pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| CheckerFault::Instantiate { message: format!("{e:#}") })?;
            call.invoke(&bindings, &mut store).await.map_err(|e| trap_fault(&e, limits.max_resources))
        };
        let returned = match tokio::time::timeout(limits.timeout, work).await {
            Ok(result) => result,
            Err(_elapsed) => Err(CheckerFault::Timeout { limit: limits.timeout }),
        };
        let timed_out = matches!(returned, Err(CheckerFault::Timeout { .. }));
        let mut data = store.into_data();
        if timed_out {
            // The timeout is the real story even if a limit was close.
            data.fault = None;
        }
        (returned, Some(data), started.elapsed())
    }
}

/// Why the guest stopped: a full resource table is the checker's resource limit (WASI traps on
/// it without telling the store), anything else a trap.
fn trap_fault(e: &wasmtime::Error, max_resources: usize) -> CheckerFault {
    let full = |cause: &(dyn std::error::Error + 'static)| {
        matches!(cause.downcast_ref::<ResourceTableError>(), Some(ResourceTableError::Full))
    };
    if matches!(e.downcast_ref::<ResourceTableError>(), Some(ResourceTableError::Full)) || e.chain().any(full) {
        return CheckerFault::ResourceLimit { limit: max_resources };
    }
    CheckerFault::Trap { message: trap_message(e) }
}

fn trap_message(e: &wasmtime::Error) -> String {
    let mut message = format!("{e:#}");
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        message = format!("{trap}: {message}");
    }
    // Backtraces can be long; the first lines say what happened.
    message.lines().take(12).collect::<Vec<_>>().join("\n")
}

fn wit_ctx(target: &Target, ctx: &ActionCtx) -> wit::Ctx {
    wit::Ctx {
        address: target.address.to_string(),
        ports: target.ports.clone(),
        team: ctx.team.0,
        tick: ctx.tick.0,
        seed: ctx.seed,
    }
}

fn status(status: wit::Status) -> Verdict {
    match status {
        wit::Status::Ok => Verdict::Ok,
        wit::Status::Mumble => Verdict::Mumble,
        wit::Status::Corrupt => Verdict::Corrupt,
        wit::Status::Down => Verdict::Down,
    }
}

fn within(what: &'static str, size: usize, limit: usize) -> Result<(), CheckerFault> {
    if size > limit { Err(CheckerFault::ResultTooLarge { what, size, limit }) } else { Ok(()) }
}

/// Checks the returned values against the size limits and copies them into `outcome`.
fn accept(
    outcome: &mut ActionOutcome,
    returned: Returned,
    limits: &crate::ActionLimits,
    mut log_bytes: usize,
) -> Result<(), CheckerFault> {
    let verdict = match returned {
        Returned::Verdict(v) => v,
        Returned::Put(put) => {
            within("flag id", put.flag_id.len(), limits.max_message_bytes)?;
            within("state", put.state.len(), limits.max_state_bytes)?;
            outcome.flag_id = Some(put.flag_id);
            outcome.state = Some(put.state);
            put.verdict
        }
        Returned::Exploit(None) => return Err(CheckerFault::NoExploit),
        Returned::Exploit(Some(exploit)) => {
            within("flag list", exploit.flags.len(), limits.max_flags)?;
            for flag in &exploit.flags {
                within("flag", flag.len(), limits.max_message_bytes)?;
            }
            outcome.flags = exploit.flags;
            exploit.verdict
        }
        Returned::Info(_) => unreachable!("info is not an action"),
    };
    within("public message", verdict.public_message.len(), limits.max_message_bytes)?;
    for line in verdict.private_log {
        log_bytes += line.len() + 1;
        if log_bytes > limits.max_log_bytes {
            return Err(CheckerFault::LogLimit { limit: limits.max_log_bytes });
        }
        outcome.private_log.push(line);
    }
    outcome.verdict = status(verdict.status);
    outcome.public_message = verdict.public_message;
    Ok(())
}
