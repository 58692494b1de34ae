//! The command line: `cargo hotswap run | init | doctor`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::host::BuildOptions;

#[derive(Parser)]
#[command(
    name = "cargo hotswap",
    bin_name = "cargo hotswap",
    version,
    about = "Run a Rust program and hot-swap edited code into it, keeping its state.",
    after_help = "Mark entry points with #[hotswap::hot], run `cargo hotswap run`, edit, save."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the program in hot mode, run it, and patch it live on every save.
    Run {
        /// Package to run (as for `cargo run -p`).
        #[arg(short, long)]
        package: Option<String>,
        /// Binary to run.
        #[arg(long, conflicts_with = "example")]
        bin: Option<String>,
        /// Example to run.
        #[arg(long)]
        example: Option<String>,
        /// Build the package's `cdylib` instead and run the command after `--` as its host
        /// (a C program, `python3 app.py`, …): every process that loads the library is patched.
        /// The library's path is in the host's environment as `HOTSWAP_LIBRARY`.
        #[arg(long, conflicts_with_all = ["bin", "example"])]
        lib: bool,
        /// Features to activate (comma or space separated).
        #[arg(short = 'F', long, value_delimiter = ',')]
        features: Vec<String>,
        /// Activate all features.
        #[arg(long)]
        all_features: bool,
        /// Do not activate the `default` feature.
        #[arg(long)]
        no_default_features: bool,
        /// Build with the release profile (patches are built the same way).
        #[arg(long, short)]
        release: bool,
        /// Path to Cargo.toml.
        #[arg(long)]
        manifest_path: Option<PathBuf>,
        /// When patched code panics, roll its patch back to the code before it (the panic
        /// still reaches the caller).
        #[arg(long)]
        rollback_on_panic: bool,
        /// Arguments for the program (with `--lib`: the host command and its arguments).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Set up a package or workspace for hotswap with the fewest edits.
    Init {
        /// Path to Cargo.toml (default: the one cargo finds from here).
        #[arg(long)]
        manifest_path: Option<PathBuf>,
        /// Depend on hotswap by this path instead of by version.
        #[arg(long)]
        hotswap_path: Option<PathBuf>,
        /// Show what would change without writing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the toolchain, linker and platform, and say what will work.
    Doctor,
    /// Run the checks `run` makes before delivering a patch on two builds of a hot crate, and
    /// print what they found and how long they took, as JSON (for the bench and for debugging).
    #[command(name = "check-builds", hide = true)]
    CheckBuilds {
        /// The hot crate's name, as rustc knows it.
        #[arg(long = "crate")]
        crate_name: String,
        /// The rlib the program runs.
        #[arg(long)]
        running: PathBuf,
        /// Its crate root (`src/lib.rs`) as it was built.
        #[arg(long)]
        running_root: PathBuf,
        /// The patch's rlib.
        #[arg(long)]
        patch: PathBuf,
        /// Its crate root as it was built.
        #[arg(long)]
        patch_root: PathBuf,
        /// Object files and rlibs of the code outside the hot crate.
        #[arg(long)]
        outside: Vec<PathBuf>,
        /// Linkage names of the statics the program shares with patches.
        #[arg(long)]
        shared: Vec<String>,
    },
}

pub fn main() -> i32 {
    let mut args: Vec<String> = std::env::args().collect();
    // As a cargo subcommand we are called as `cargo-hotswap hotswap …`.
    if args.get(1).is_some_and(|a| a == "hotswap") {
        args.remove(1);
    }
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Run {
            package,
            bin,
            example,
            lib,
            features,
            all_features,
            no_default_features,
            release,
            manifest_path,
            rollback_on_panic,
            args,
        } => crate::run::run(crate::run::RunOptions {
            manifest_path,
            package,
            bin,
            example,
            build: BuildOptions {
                features,
                all_features,
                no_default_features,
                release,
            },
            args,
            rollback_on_panic,
            library: lib,
        }),
        Command::Init {
            manifest_path,
            hotswap_path,
            dry_run,
        } => crate::init::run(manifest_path.as_deref(), hotswap_path.as_deref(), dry_run),
        Command::Doctor => crate::doctor::run(),
        Command::CheckBuilds {
            crate_name,
            running,
            running_root,
            patch,
            patch_root,
            outside,
            shared,
        } => crate::check::check_builds(crate::check::Standalone {
            crate_name,
            running,
            running_root,
            patch,
            patch_root,
            outside,
            shared,
        }),
    }
}
