// Every shape `#[hot]` accepts, compiled and run: lifetimes (elided, named, bounded, higher-ranked),
// references, `&mut` state, owned and borrowed returns, patterns in arguments, `dyn` types, `!`,
// the explicit Rust ABI, `extern "C"` (with `no_mangle`, `export_name` or neither, called by
// symbol), and a `#[hot] impl` block with `&self`, `&mut self`, `self`, `mut self`,
// `self: Box<Self>`, associated functions and an associated const; `#[hot]` trait impls (called
// statically, through generic code and through `dyn`; two traits with a method of the same name
// on one type; associated types and consts; a standard trait), and impl blocks of types whose only
// generics are lifetimes; `async fn`s (`Send` and `?Send`, borrowing arguments elided and named,
// patterns, methods, `#[hot(skip)]` beside them, a type with a lifetime), run by a tiny executor;
// `#[hot] mod` (`pub` functions hot, private helpers, `#[hot(skip)]`, async, `?Send`).
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

// The C ABI, called by name: the exported wrapper keeps `extern "C"` and its `no_mangle` or
// `export_name` (a second symbol of that name would not link); what it calls is Rust code.
#[hotswap::hot]
#[unsafe(no_mangle)]
pub extern "C" fn hs_shapes_c_step(counter: u64) -> u64 {
    counter * 2
}

#[hotswap::hot]
#[no_mangle]
pub extern "C" fn hs_shapes_c_old_style(a: u32, b: u32) -> u32 {
    a * 10 + b
}

#[hotswap::hot]
#[export_name = "hs_shapes_c_exported"]
pub extern "C" fn c_exported_under_another_name(value: i32) -> i32 {
    -value
}

#[hotswap::hot]
extern "C" fn c_abi_without_a_symbol(value: u8) -> u8 {
    value ^ 1
}

#[hotswap::hot]
#[allow(missing_abi)]
pub extern fn bare_extern_is_c(value: u16) -> u16 {
    value + 3
}

// What a C program sees: the symbols, declared as foreign functions.
mod c_side {
    extern "C" {
        pub fn hs_shapes_c_step(counter: u64) -> u64;
        pub fn hs_shapes_c_old_style(a: u32, b: u32) -> u32;
        pub fn hs_shapes_c_exported(value: i32) -> i32;
    }
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

    // Kept cold: generic methods are fine then.
    #[hotswap::hot(skip)]
    pub fn count_as<T: From<u32>>(&self) -> T {
        T::from(self.count)
    }
}

use hotswap::hot;

// A second type with methods of the same names: separate slots again.
pub struct Other(u32);

#[hotswap::hot]
impl Other {
    pub fn get(&self) -> u32 {
        self.0
    }
}

pub trait Speak {
    fn speak(&self) -> String;
    fn name(&self) -> &str {
        "someone"
    }
}

pub trait Loud {
    fn speak(&self) -> String;
}

pub trait Shape {
    type Unit;
    const SIDES: u32;
    fn sides(&self) -> Self::Unit;
    fn scaled(self, by: u32) -> Self
    where
        Self: Sized;
    fn describe(&self, prefix: &str) -> String;
}

pub struct Dog {
    pub n: u64,
    pub name: String,
}

#[hotswap::hot]
impl Speak for Dog {
    fn speak(&self) -> String {
        format!("woof {}", self.n)
    }

    #[hot(skip)]
    fn name(&self) -> &str {
        &self.name
    }
}

#[hotswap::hot]
impl Loud for Dog {
    fn speak(&self) -> String {
        format!("WOOF {}", Speak::speak(self))
    }
}

#[derive(Debug, PartialEq)]
pub struct Square(u32);

#[hotswap::hot]
impl Shape for Square {
    type Unit = u64;
    const SIDES: u32 = 4;

    fn sides(&self) -> Self::Unit {
        u64::from(Self::SIDES)
    }

    fn scaled(mut self, by: u32) -> Self
    where
        Self: Sized,
    {
        self.0 *= by;
        self
    }

    fn describe(&self, prefix: &str) -> String {
        let unit: <Self as Shape>::Unit = self.sides();
        format!("{prefix} {} {unit}", self.0)
    }
}

pub struct Meters(pub f64);

#[hotswap::hot]
impl std::fmt::Display for Meters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} m", self.0)
    }
}

// Lifetimes as the only generics: an inherent impl and a trait impl.
pub struct Parser<'a> {
    text: &'a str,
    at: usize,
}

#[hotswap::hot]
impl<'a> Parser<'a> {
    pub fn new(text: &'a str) -> Self {
        Parser { text, at: 0 }
    }

    pub fn next_word(&mut self) -> Option<&'a str> {
        let rest = self.text[self.at..].trim_start();
        if rest.is_empty() {
            return None;
        }
        let start = self.text.len() - rest.len();
        let end = rest.find(' ').map_or(self.text.len(), |i| start + i);
        self.at = end;
        Some(&self.text[start..end])
    }

    pub fn rest(&self) -> &str {
        &self.text[self.at..]
    }
}

pub struct View<'a> {
    words: &'a [&'a str],
}

#[hotswap::hot]
impl<'a> Speak for View<'a> {
    fn speak(&self) -> String {
        self.words.join(" ")
    }

    fn name(&self) -> &str {
        self.words.first().copied().unwrap_or("nobody")
    }
}

#[hotswap::hot]
impl Loud for View<'_> {
    fn speak(&self) -> String {
        self.words.join(" ").to_uppercase()
    }
}

// One generic type, two concrete impls of one trait: separate slots and entries
// (`shapes::<Wrapper<u32> as Speak>::speak`, `shapes::<Wrapper<u64> as Speak>::speak`).
pub struct Wrapper<T>(pub T);

#[hotswap::hot]
impl Speak for Wrapper<u32> {
    fn speak(&self) -> String {
        format!("u32 {}", self.0)
    }
}

#[hotswap::hot]
impl Speak for Wrapper<u64> {
    fn speak(&self) -> String {
        format!("u64 {}", self.0)
    }
}

// A foreign type, and a trait with a lifetime parameter.
#[hotswap::hot]
impl Speak for u8 {
    fn speak(&self) -> String {
        format!("byte {self}")
    }
}

pub trait Pick<'a> {
    fn pick(&self, from: &'a [String]) -> &'a str;
}

#[hotswap::hot]
impl<'a> Pick<'a> for usize {
    fn pick(&self, from: &'a [String]) -> &'a str {
        &from[*self]
    }
}

fn talk<T: Speak>(t: &T) -> String {
    format!("{} says {}", t.name(), t.speak())
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

pub struct Tagged<'a> {
    tag: &'a str,
    seen: u32,
}

// Async methods of an impl block whose type has a lifetime, beside a `#[hot(skip)]` method.
#[hotswap::hot]
impl<'a> Tagged<'a> {
    pub async fn tag_len(&self) -> usize {
        yield_now().await;
        self.tag.len()
    }

    pub async fn see(&mut self, extra: &u32) -> u32 {
        yield_now().await;
        self.seen += *extra;
        self.seen
    }

    // The output borrows from `self` (method elision), with other borrowed arguments too.
    pub async fn tag_ref(&self, skip: &usize) -> &str {
        yield_now().await;
        &self.tag[*skip..]
    }

    #[hot(skip)]
    pub fn tag(&self) -> &'a str {
        self.tag
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

// `#[hot] mod`: its `pub` functions become hot; a private helper, a `#[hot(skip)]` generic
// function (the mark needs no `hot` in scope) and the impl block stay as written.
#[hotswap::hot]
pub mod systems {
    #![allow(clippy::needless_lifetimes)]

    pub struct Score(pub u32);

    impl Score {
        pub fn double(&self) -> u32 {
            self.0 * 2
        }
    }

    pub fn step(counter: &mut u32) -> String {
        *counter += 1;
        format!("step {}", helper(*counter))
    }

    pub(crate) fn score(value: u32) -> Score {
        Score(helper(value))
    }

    fn helper(value: u32) -> u32 {
        value * 10
    }

    #[hot(skip)]
    pub fn largest<T: PartialOrd + Copy>(items: &[T]) -> T {
        let mut best = items[0];
        for &item in items {
            if item > best {
                best = item;
            }
        }
        best
    }

    pub async fn step_later(counter: &mut u32) -> String {
        super::yield_now().await;
        step(counter)
    }
}

#[hotswap::hot(?Send)]
mod local_systems {
    pub async fn shared(value: std::rc::Rc<u32>) -> u32 {
        super::yield_now().await;
        *value + 1
    }

    pub fn plain(value: u32) -> u32 {
        value + 2
    }

    pub extern "C" fn plain_c(value: u32) -> u32 {
        value + 4
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
    assert_eq!(hs_shapes_c_step(21), 42);
    assert_eq!(hs_shapes_c_old_style(4, 2), 42);
    assert_eq!(c_exported_under_another_name(5), -5);
    assert_eq!(c_abi_without_a_symbol(2), 3);
    assert_eq!(bare_extern_is_c(1), 4);
    let through_c: extern "C" fn(u64) -> u64 = hs_shapes_c_step;
    assert_eq!(through_c(4), 8);
    // SAFETY: the declarations above match the definitions.
    unsafe {
        assert_eq!(c_side::hs_shapes_c_step(50), 100);
        assert_eq!(c_side::hs_shapes_c_old_style(1, 3), 13);
        assert_eq!(c_side::hs_shapes_c_exported(7), -7);
    }
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
    assert_eq!(counter.count_as::<u64>(), 7);
    assert_eq!(Box::new(counter).boxed_count(), 7);
    assert_eq!(other.into_label(), "other");
    assert_eq!(Other(9).get(), 9);

    let dog = Dog {
        n: 3,
        name: "rex".to_owned(),
    };
    assert_eq!(<Dog as Speak>::speak(&dog), "woof 3");
    assert_eq!(Loud::speak(&dog), "WOOF woof 3");
    assert_eq!(talk(&dog), "rex says woof 3");
    let boxed: Box<dyn Speak> = Box::new(Dog {
        n: 4,
        name: "fido".to_owned(),
    });
    let speaker: &dyn Speak = &*boxed;
    assert_eq!(speaker.speak(), "woof 4");
    assert_eq!(speaker.name(), "fido");
    let square = Square(2);
    assert_eq!(square.sides(), 4);
    assert_eq!(<Square as Shape>::SIDES, 4);
    assert_eq!(square.describe("square"), "square 2 4");
    assert_eq!(square.scaled(3), Square(6));
    assert_eq!(Meters(1.5).to_string(), "1.5 m");

    let text = String::from("one two three");
    let second = {
        let mut parser = Parser::new(&text);
        assert_eq!(parser.next_word(), Some("one"));
        assert_eq!(parser.rest(), " two three");
        parser.next_word()
    };
    // What `next_word` returned borrows the text, not the parser.
    assert_eq!(second, Some("two"));
    let words = ["hello", "there"];
    let view = View { words: &words };
    assert_eq!(talk(&view), "hello says hello there");
    assert_eq!(Loud::speak(&view), "HELLO THERE");
    let speakers: Vec<Box<dyn Speak + '_>> = vec![Box::new(view), Box::new(dog)];
    let said: Vec<String> = speakers.iter().map(|s| s.speak()).collect();
    assert_eq!(said, ["hello there", "woof 3"]);
    assert_eq!(talk(&Wrapper(1u32)), "someone says u32 1");
    assert_eq!(Wrapper(2u64).speak(), "u64 2");
    assert_eq!(talk(&7u8), "someone says byte 7");
    let names = vec!["a".to_owned(), "b".to_owned()];
    assert_eq!(1usize.pick(&names), "b");

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
    let mut tagged = Tagged {
        tag: "label",
        seen: 0,
    };
    assert_eq!(block_on(assert_send(tagged.tag_len())), 5);
    assert_eq!(block_on(assert_send(tagged.see(&2))), 2);
    assert_eq!(tagged.tag(), "label");
    assert_eq!(block_on(assert_send(tagged.tag_ref(&2))), "bel");

    let mut steps = 0;
    assert_eq!(systems::step(&mut steps), "step 10");
    assert_eq!(systems::score(3).double(), 60);
    assert_eq!(systems::largest(&[3, 9, 4]), 9);
    assert_eq!(systems::largest(&["a", "c", "b"]), "c");
    assert_eq!(block_on(assert_send(systems::step_later(&mut steps))), "step 20");
    assert_eq!(steps, 2);
    assert_eq!(block_on(local_systems::shared(std::rc::Rc::new(4))), 5);
    assert_eq!(local_systems::plain(1), 3);
    assert_eq!(local_systems::plain_c(1), 5);

    assert_eq!(hotswap::version(), 0);
    println!("shapes ok, hot mode: {}", hotswap::is_hot());
}
