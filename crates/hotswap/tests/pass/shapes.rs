// Every shape `#[hot]` accepts, compiled and run: lifetimes (elided, named, bounded, higher-ranked),
// references, `&mut` state, owned and borrowed returns, patterns in arguments, `dyn` types, `!`,
// the explicit Rust ABI, and a `#[hot] impl` block with `&self`, `&mut self`, `self`, `mut self`,
// `self: Box<Self>`, associated functions and an associated const; `async fn`s (`Send` and
// `?Send`, borrowing arguments elided and named, patterns, methods), run by a tiny executor.
//
// Built twice: by trybuild in a normal build (tests/refusals.rs), where `#[hot]` must leave each
// function as it was, and in hot mode (tests/hot_mode_macro.rs), where every call goes through a
// slot. `main` checks the results, so a wrong expansion fails at compile time or at run time.

use std::collections::BTreeMap;

pub struct State {
    pub ticks: u64,
    pub names: Vec<String>,
}

#[hotswap::hot]
pub fn tick(state: &mut State) -> String {
    state.ticks += 1;
    format!("tick {}", state.ticks)
}

#[hotswap::hot]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

#[hotswap::hot]
fn first_name(state: &State) -> Option<&str> {
    state.names.first().map(String::as_str)
}

#[hotswap::hot]
fn second<'a, 'b>(pair: (&'a str, &'b str)) -> &'b str
where
    'b: 'a,
{
    pair.1
}

#[hotswap::hot]
fn static_text(index: usize) -> &'static str {
    ["zero", "one", "two"][index]
}

#[hotswap::hot]
fn sum((a, b): (u32, u32), mut extra: u32) -> u32 {
    extra += 1;
    a + b + extra
}

#[hotswap::hot]
fn nothing() {}

#[hotswap::hot]
fn counts(words: &[&str]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for word in words {
        *counts.entry((*word).to_owned()).or_insert(0) += 1;
    }
    counts
}

#[hotswap::hot]
fn adder(f: &dyn Fn(u32) -> u32, offset: u32) -> Box<dyn Fn(u32) -> u32> {
    let base = f(offset);
    Box::new(move |x| x + base)
}

// Higher-ranked lifetimes (`for<'x>`) inside argument types.
#[hotswap::hot]
fn call_both(f: &dyn for<'x> Fn(&'x str) -> &'x str, g: for<'y> fn(&'y [u8]) -> &'y [u8]) -> usize {
    f("abc").len() + g(&[1, 2]).len()
}

#[hotswap::hot]
fn give_up(message: &str) -> ! {
    panic!("gave up: {message}")
}

#[hotswap::hot]
pub extern "Rust" fn explicit_rust_abi(value: u8) -> u8 {
    value.wrapping_add(1)
}

#[hotswap::hot]
fn push_name(state: &mut State, name: String) -> usize {
    state.names.push(name);
    state.names.len()
}

mod nested {
    // Same name as the top-level `tick`: each gets its own slot and manifest entry.
    #[hotswap::hot]
    pub fn tick(value: u32) -> u32 {
        value * 2
    }
}

#[derive(Debug, PartialEq)]
pub struct Counter {
    count: u32,
    label: String,
}

#[hotswap::hot]
impl Counter {
    pub const START: u32 = 0;

    pub fn new(label: &str) -> Self {
        Counter {
            count: Self::START,
            label: label.to_owned(),
        }
    }

    pub fn bump(&mut self) -> u32 {
        self.count += 1;
        self.count
    }

    pub fn get(&self) -> u32 {
        self.count
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn merge(&mut self, other: &Counter) {
        self.count += other.count;
    }

    pub fn with_count(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    pub fn into_label(self) -> String {
        self.label
    }

    pub fn boxed_count(self: Box<Self>) -> u32 {
        self.count
    }
}

// A second type with methods of the same names: separate slots again.
pub struct Other(u32);

#[hotswap::hot]
impl Other {
    pub fn get(&self) -> u32 {
        self.0
    }
}

/// Polls a future to completion on this thread (no runtime: the futures below never wait on
/// anything but `yield_now`).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// Pending once, then ready: an `.await` that suspends the body.
async fn yield_now() {
    let mut pending = true;
    std::future::poll_fn(move |_| {
        if std::mem::take(&mut pending) {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[hotswap::hot]
async fn add_later(a: u32, b: u32) -> u32 {
    yield_now().await;
    a + b
}

#[hotswap::hot]
async fn nothing_async() {}

// Two elided lifetimes, one of them `&mut`, held across an await.
#[hotswap::hot]
async fn push_later(state: &mut State, name: &str) -> usize {
    yield_now().await;
    state.names.push(name.to_owned());
    state.names.len()
}

// Named lifetimes, an elided one, and a borrowed output.
#[hotswap::hot]
async fn pick<'a, 'b: 'a>(a: &'a str, b: &'b str, calls: &mut u32) -> &'a str {
    *calls += 1;
    yield_now().await;
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

// The output borrows from the only borrowed argument (elided); patterns.
#[hotswap::hot]
async fn first_later(state: &State, (skip, _): (usize, u8), _: u8) -> Option<&str> {
    yield_now().await;
    state.names.get(skip).map(String::as_str)
}

// `'_` in a path.
#[hotswap::hot]
async fn label_len(label: std::borrow::Cow<'_, str>) -> usize {
    yield_now().await;
    label.len()
}

// `?` and an early `return` in the body.
#[hotswap::hot]
async fn parse_later(text: &str) -> Result<u32, std::num::ParseIntError> {
    yield_now().await;
    if text.is_empty() {
        return Ok(0);
    }
    let value: u32 = text.parse()?;
    Ok(value + 1)
}

// Elided lifetimes of `Fn(&T)` stay higher-ranked.
#[hotswap::hot]
async fn apply_later(f: &(dyn Fn(&u32) -> u32 + Sync), value: u32) -> u32 {
    yield_now().await;
    f(&value)
}

// Holds an `Rc` across an await: allowed with `?Send`.
#[hotswap::hot(?Send)]
async fn count_shared(count: std::rc::Rc<std::cell::Cell<u32>>) -> u32 {
    let held = count.clone();
    yield_now().await;
    held.set(held.get() + 1);
    held.get()
}

pub struct Account {
    balance: u64,
}

#[hotswap::hot]
impl Account {
    pub async fn deposit(&mut self, amount: u64) -> u64 {
        yield_now().await;
        self.balance += amount;
        self.balance
    }

    pub async fn balance(&self) -> u64 {
        self.balance
    }

    pub async fn close(mut self, fee: &u64) -> u64 {
        yield_now().await;
        self.balance -= *fee;
        self.balance
    }

    pub fn open(balance: u64) -> Self {
        Account { balance }
    }
}

pub struct Local(std::rc::Rc<u32>);

#[hotswap::hot(?Send)]
impl Local {
    pub async fn value(&self) -> u32 {
        let held = self.0.clone();
        yield_now().await;
        *held
    }
}

fn main() {
    let mut state = State {
        ticks: 0,
        names: Vec::new(),
    };
    assert_eq!(tick(&mut state), "tick 1");
    assert_eq!(tick(&mut state), "tick 2");
    assert_eq!(state.ticks, 2);
    assert_eq!(first_name(&state), None);
    assert_eq!(push_name(&mut state, "ada".to_owned()), 1);
    assert_eq!(first_name(&state), Some("ada"));

    let short = String::from("ab");
    let long = String::from("abcd");
    assert_eq!(longest(&short, &long), "abcd");
    assert_eq!(second((&short, &long)), "abcd");
    assert_eq!(static_text(2), "two");
    assert_eq!(sum((1, 2), 3), 7);
    nothing();
    assert_eq!(counts(&["a", "b", "a"])["a"], 2);
    assert_eq!(adder(&|x| x * 10, 1)(5), 15);
    assert_eq!(call_both(&|s| s, |b| b), 5);
    assert_eq!(explicit_rust_abi(255), 0);
    assert_eq!(nested::tick(21), 42);

    std::panic::set_hook(Box::new(|_| {})); // the expected panic below need not be printed
    let gave_up = std::panic::catch_unwind(|| give_up("enough"));
    drop(std::panic::take_hook());
    let payload = gave_up.expect_err("a `!` function cannot return");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("gave up: enough")
    );

    let mut counter = Counter::new("clicks");
    assert_eq!(counter.bump(), 1);
    assert_eq!(counter.bump(), 2);
    assert_eq!(counter.get(), 2);
    assert_eq!(counter.label(), "clicks");
    let other = Counter::new("other").with_count(5);
    counter.merge(&other);
    assert_eq!(counter.get(), 7);
    assert_eq!(Box::new(counter).boxed_count(), 7);
    assert_eq!(other.into_label(), "other");
    assert_eq!(Other(9).get(), 9);

    assert_eq!(block_on(assert_send(add_later(2, 3))), 5);
    block_on(nothing_async());
    let mut state = State {
        ticks: 0,
        names: Vec::new(),
    };
    assert_eq!(block_on(assert_send(push_later(&mut state, "ada"))), 1);
    let name = String::from("grace");
    assert_eq!(block_on(push_later(&mut state, &name)), 2);
    let mut calls = 0;
    assert_eq!(block_on(pick(&short, &long, &mut calls)), "abcd");
    assert_eq!(calls, 1);
    assert_eq!(
        block_on(first_later(&state, (1, 0), 9)),
        Some("grace")
    );
    assert_eq!(block_on(parse_later("41")), Ok(42));
    assert_eq!(block_on(parse_later("")), Ok(0));
    assert!(block_on(parse_later("x")).is_err());
    assert_eq!(block_on(label_len(name.as_str().into())), 5);
    assert_eq!(block_on(apply_later(&|x| x * 3, 4)), 12);
    let shared = std::rc::Rc::new(std::cell::Cell::new(1));
    assert_eq!(block_on(count_shared(shared.clone())), 2);
    assert_eq!(shared.get(), 2);
    let mut account = Account::open(10);
    assert_eq!(block_on(assert_send(account.deposit(5))), 15);
    assert_eq!(block_on(account.balance()), 15);
    assert_eq!(block_on(account.close(&3)), 12);
    assert_eq!(block_on(Local(std::rc::Rc::new(7)).value()), 7);

    assert_eq!(hotswap::version(), 0);
    println!("shapes ok, hot mode: {}", hotswap::is_hot());
}
