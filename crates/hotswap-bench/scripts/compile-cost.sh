#!/bin/sh
# What `#[hot]` costs the compiler, in instructions (callgrind: the same count on a busy or a
# quiet machine): rustc's rebuild of a crate of N functions after a one-constant edit, the
# functions `#[hotswap::hot]` (hot mode, the `hot` feature) or plain.
#
#   crates/hotswap-bench/scripts/compile-cost.sh N hot|plain [HOTSWAP_CRATE_DIR]
#
# HOTSWAP_CRATE_DIR: the `hotswap` crate to build against (default: this repository's), e.g. a
# `git worktree` of an older commit, to compare. Prints `N hot|plain: M million instructions`.
# The macros are built at opt-level 3, as `cargo hotswap run` builds them.
# Needs valgrind. Takes about a minute for N = 100, three for N = 500.
set -eu
n=$1
kind=$2
repo=$(cd "$(dirname "$0")/../../.." && pwd)
hotswap=${3:-$repo/crates/hotswap}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
cat > "$work/Cargo.toml" <<TOML
[package]
name = "compile_cost"
version = "0.1.0"
edition = "2021"
[dependencies]
hotswap = { path = "$hotswap", features = ["hot"] }
[workspace]
# As \`cargo hotswap run\` builds them (host.rs, FAST_MACROS): the macros at opt-level 3.
[profile.dev.package.hotswap-macros]
opt-level = 3
[profile.dev.package.syn]
opt-level = 3
[profile.dev.package.quote]
opt-level = 3
[profile.dev.package.proc-macro2]
opt-level = 3
TOML
attr=""
[ "$kind" = hot ] && attr="#[hotswap::hot]"
{
    echo "const MARK: u64 = 0;"
    echo "$attr pub fn mark() -> u64 { MARK }"
    i=0
    while [ "$i" -lt "$n" ]; do
        echo "$attr pub fn f$i(x: u64) -> u64 { x.wrapping_add($i) }"
        i=$((i + 1))
    done
} > "$work/src/lib.rs"
cd "$work"
export CARGO_TARGET_DIR="$work/target"
cargo build -q
sed -i 's/const MARK: u64 = 0;/const MARK: u64 = 1;/' src/lib.rs
# The command cargo runs for the crate, replayed under callgrind with cargo's environment.
command=$(cargo build -v 2>&1 | sed -n 's/^ *Running `\(.*--crate-name compile_cost .*\)`$/\1/p')
sed -i 's/const MARK: u64 = 1;/const MARK: u64 = 2;/' src/lib.rs
instructions=$(CARGO_CRATE_NAME=compile_cost CARGO_PKG_NAME=compile_cost CARGO_MANIFEST_DIR="$work" \
    sh -c "valgrind --tool=callgrind --callgrind-out-file=/dev/null $command" 2>&1 >/dev/null |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
echo "$n $kind: $((instructions / 1000000)) million instructions"
