//! `cargo hotswap`: run a program and hot-swap edited code into it.
//!
//! One binary, three roles:
//! - `cargo hotswap …`: the command a user runs ([`cli`]);
//! - `RUSTC_WRAPPER` during the app's build ([`capture`]): records each compiler command so a
//!   patch can be built with exactly the same flags, and switches hot mode on;
//! - the linker of the app's executable ([`linker`]): keeps every function of the hot crates'
//!   dependencies in the executable, and exports them, so patches can call them.
//!
//! The `run` pipeline follows the data: [`watch`] → [`patch`] (build, link) → [`deliver`] →
//! the program's runtime (check, swap) → back through [`deliver`] → [`report`].

mod app;
mod build_units;
mod capture;
mod carry;
mod check;
mod cli;
mod deliver;
mod doctor;
mod host;
mod init;
mod layout;
mod link_direct;
mod link_with;
mod linker;
mod objects;
mod patch;
mod progress;
mod project;
// Not called yet: `run.rs` (owned elsewhere) calls `reach::analyse` between building a patch
// and delivering it.
#[cfg_attr(not(test), allow(dead_code))]
mod reach;
mod report;
mod rewrite;
mod run;
mod runtime_deps;
mod sources;
mod statics;
#[cfg(test)]
mod test_rustc;
mod watch;

fn main() {
    let code = match std::env::var(capture::ROLE_ENV).ok().as_deref() {
        Some(capture::ROLE_WRAPPER) => capture::wrapper_main(),
        Some(linker::ROLE_LINKER) => linker::main(),
        _ => cli::main(),
    };
    std::process::exit(code);
}
