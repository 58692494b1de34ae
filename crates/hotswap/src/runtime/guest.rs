//! The two sides of a self-contained patch library (full library mode).
//!
//! Such a library has its own copy of `std`, `log`, `tracing` and this crate. Right after
//! loading it, the host calls its exported [`GUEST_INIT_SYMBOL`]
//! with a [`HostContext`]: from then on the library's runtime stays dormant, its `log` and
//! `tracing` forward to the host's logger and dispatcher, and a panic in its code is caught in the
//! library and raised again in the host (an unwind cannot be caught by another copy of `std`).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use super::load::Loaded;

/// Symbol a self-contained library (with its own copy of this crate) exports: the host calls it
/// before any of the library's code runs. It is `__hotswap_guest_init_v1` below.
pub(crate) const GUEST_INIT_SYMBOL: &str = "__hotswap_guest_init_v1";

/// Layout version of [`HostContext`].
const CONTEXT_ABI: u32 = 1;

/// What the host hands a library. Both sides are built by the same compiler from the same
/// lock file, so the `log` and `tracing` types behind these pointers have the same layout.
#[repr(C)]
pub struct HostContext {
    abi: u32,
    /// Raises a panic with this message in the host, on behalf of `function`, which panicked
    /// at `location`.
    raise: fn(function: &str, message: &str, location: &str) -> !,
    /// `&'static dyn log::Log` of the host, as its two pointer-sized parts.
    logger: [usize; 2],
    log_max_level: usize,
    /// The host's global `tracing` dispatcher, or null.
    dispatch: *const tracing::Dispatch,
}

static IS_GUEST: AtomicBool = AtomicBool::new(false);
static RAISE: OnceLock<fn(&str, &str, &str) -> !> = OnceLock::new();

thread_local! {
    /// Where the last panic of this thread happened (guest side; see the hook in init).
    static LAST_LOCATION: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

pub(crate) fn is_guest() -> bool {
    IS_GUEST.load(Ordering::Acquire)
}

/// Host side: initialise a freshly loaded self-contained library.
pub(crate) fn init_guest(library: &Loaded) -> Result<(), String> {
    let Some(init) = library.function(GUEST_INIT_SYMBOL) else {
        return Err("it has no hotswap guest entry point".into());
    };
    let logger: *const dyn log::Log = log::logger();
    // SAFETY: a `*const dyn Trait` is two pointer-sized words on every platform Rust supports.
    let logger: [usize; 2] = unsafe { std::mem::transmute(logger) };
    let dispatch =
        tracing::dispatcher::has_been_set().then(|| tracing::dispatcher::get_default(Clone::clone));
    let context = HostContext {
        abi: CONTEXT_ABI,
        raise: raise_in_host,
        logger,
        log_max_level: log::max_level() as usize,
        dispatch: dispatch
            .as_ref()
            .map_or(std::ptr::null(), |dispatch| dispatch as *const _),
    };
    // SAFETY: `dlsym` found GUEST_INIT_SYMBOL in this library itself; only this crate
    // exports that name, with this signature (see `__hotswap_guest_init_v1`).
    let init: unsafe extern "C" fn(*const HostContext) -> u32 =
        unsafe { std::mem::transmute(init) };
    // SAFETY: `context` outlives the call; the guest copies what it keeps.
    match unsafe { init(&context) } {
        CONTEXT_ABI => Ok(()),
        INIT_PANICKED => Err("its initialisation panicked; the running code was kept".into()),
        other => Err(format!(
            "it was built with an incompatible version of hotswap (guest interface {other}, \
             this program has {CONTEXT_ABI}); rebuild both with the same hotswap"
        )),
    }
}

fn raise_in_host(function: &str, message: &str, location: &str) -> ! {
    // The host's panic hook will point at this file: say where it really happened.
    if let Some(runtime) = super::RUNTIME.get() {
        runtime.info(&format!("`{function}` panicked at {location}: {message}"));
    }
    super::panicked(function, message);
    std::panic::panic_any(message.to_owned())
}

/// Guest side: called by the host once, before any code of this library runs.
///
/// # Safety
/// `context` must point to a live `HostContext` made by a host built with the same compiler
/// and the same versions of `log` and `tracing`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __hotswap_guest_init_v1(context: *const HostContext) -> u32 {
    IS_GUEST.store(true, Ordering::Release);
    // SAFETY: the caller promises a live context.
    let Some(context) = (unsafe { context.as_ref() }) else {
        return 0;
    };
    if context.abi != CONTEXT_ABI {
        return CONTEXT_ABI;
    }
    // A panic must not unwind out of this `extern "C"` function (that aborts the program): the
    // host refuses the library instead.
    match catch_unwind(AssertUnwindSafe(|| adopt(context))) {
        Ok(()) => CONTEXT_ABI,
        Err(_) => INIT_PANICKED,
    }
}

/// What the guest init returns when it panicked.
const INIT_PANICKED: u32 = u32::MAX;

/// Guest side: take over the host's panic forwarding, logger and dispatcher.
fn adopt(context: &HostContext) {
    let _ = RAISE.set(context.raise);
    // SAFETY: the host built these words from a `&'static dyn log::Log` of the same `log`
    // version; the host's logger lives as long as the process.
    let logger: &'static dyn log::Log = unsafe { std::mem::transmute(context.logger) };
    if log::set_logger(logger).is_ok() {
        let level = log::LevelFilter::iter()
            .nth(context.log_max_level)
            .unwrap_or(log::LevelFilter::Off);
        log::set_max_level(level);
    }
    // SAFETY: non-null means it points to the host's live `Dispatch` of the same `tracing`.
    if let Some(dispatch) = unsafe { context.dispatch.as_ref() } {
        if tracing::dispatcher::set_global_default(dispatch.clone()).is_ok() {
            // The library's `tracing` computed its maximum level before it had a dispatcher
            // (OFF): without this, every event of the library is filtered out statically.
            tracing::callsite::rebuild_interest_cache();
        }
    }
    // The host prints the panic (its hook sees the re-raised one); only note where it was.
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(ToString::to_string).unwrap_or_default();
        LAST_LOCATION.with(|last| *last.borrow_mut() = location);
    }));
}

/// Runs patched code. In a guest (self-contained library) a panic becomes a host panic with the
/// same message; in the host (a thin patch under the roll-back policy) the runtime hears of it
/// and the panic goes on as it was.
///
/// Not generic, and not inlined: every hot function's guarded shim calls this one copy (a
/// generic guard was compiled again, `catch_unwind` and all, for each hot function).
#[inline(never)]
pub(crate) fn guard(function: &'static str, f: &mut dyn FnMut()) {
    guard_as(Guarded::Named(function), f)
}

/// [`guard`] for the guarded shim at `shim` (`shims.rs`), which knows its own address rather
/// than its function's name: the name is looked up only if the code panics.
#[inline(never)]
pub(crate) fn guard_shim(shim: *const (), f: &mut dyn FnMut()) {
    guard_as(Guarded::Shim(shim), f)
}

/// Which function a guard runs.
#[derive(Clone, Copy)]
enum Guarded {
    Named(&'static str),
    /// A guarded shim's address: its entry says the name.
    Shim(*const ()),
}

/// What a function's name is when a guarded shim's address says nothing (never expected: every
/// shim a slot or a host calls is some entry's).
const UNKNOWN_FUNCTION: &str = "a `#[hot]` function";

fn guard_as(guarded: Guarded, f: &mut dyn FnMut()) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => {}
        Err(payload) => {
            let message = payload_message(&*payload);
            match RAISE.get() {
                Some(raise) => {
                    drop(payload);
                    let location = LAST_LOCATION.with(|last| last.borrow().clone());
                    // In a guest, the shim is one of this library's own entries.
                    let function = match guarded {
                        Guarded::Named(function) => function,
                        Guarded::Shim(shim) => crate::__private::ENTRIES
                            .iter()
                            .find(|entry| entry.guarded == shim)
                            .map_or(UNKNOWN_FUNCTION, |entry| entry.name.as_str()),
                    };
                    raise(function, &message, &location)
                }
                None => {
                    match guarded {
                        Guarded::Named(function) => super::panicked(function, &message),
                        Guarded::Shim(shim) => super::panicked_in(shim, &message),
                    }
                    std::panic::resume_unwind(payload)
                }
            }
        }
    }
}

/// The text of a panic payload, as the default panic hook would print it.
pub(crate) fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}
