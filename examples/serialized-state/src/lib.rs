//! The hot part of the serialized-state example: a shelf of items, a `Vec` of records kept in a
//! `hotswap::State`, whose record type you can change while the program runs.
//!
//! Rename the record `Item` to `Product`, its `count` to `quantity` (keeping the old name
//! readable with `#[serde(alias = "count")]`), add a field with its own default
//! (`#[serde(default = "...")]`), use them in `day`, and save: the runtime serialises the live
//! shelf with the old code and reads it back with the new one, so every item keeps its count
//! under the new name, and `cargo hotswap run` reports `migrated 1 state value`.
//!
//! The runtime sees a change of `Shelf`, the type in the `State`, by its own fields (name, type,
//! offset, size): `items: Vec<Item>` becoming `items: Vec<Product>` is one. A change inside
//! `Item` alone leaves `Shelf`'s fields as they were (a `Vec` is the same three words whatever
//! it holds), so the runtime would not migrate it: `cargo hotswap run` restarts the program
//! instead, naming `Item`, and carries the shelf over through serde. Rename the record type when
//! you change it, as here, to keep the edit live.

use serde::{Deserialize, Serialize};

/// The program's state: `main` owns it in a `hotswap::State` and fills it through `stock`;
/// only `#[hot]` code reads or writes it (after a migration only the new code knows its layout).
#[derive(Default, Serialize, Deserialize, hotswap::Migrate)]
#[serde(default)]
pub struct Shelf {
    pub day: u64,
    pub items: Vec<Item>,
}

/// One record of the shelf. Only `Shelf`, the type in the `State`, derives `Migrate`; what it
/// contains needs only serde.
#[derive(Serialize, Deserialize)]
pub struct Item {
    pub name: String,
    pub count: u32,
}

/// Puts `count` of `name` on the shelf. `#[hot]` like `day`, because `main` calls it: a change
/// of `Item` changes this code too, and code `main` called directly could not be patched.
#[hotswap::hot]
pub fn stock(shelf: &mut hotswap::State<Shelf>, name: &str, count: u32) {
    shelf.get_mut().items.push(Item {
        name: name.to_owned(),
        count,
    });
}

/// One day: every item gains one. Returns the line `main` prints, `day D: name=count ...`.
#[hotswap::hot]
pub fn day(shelf: &mut hotswap::State<Shelf>) -> String {
    let mut shelf = shelf.get_mut();
    shelf.day += 1;
    let mut line = format!("day {}:", shelf.day);
    for item in &mut shelf.items {
        item.count += 1;
        line.push_str(&format!(" {}={}", item.name, item.count));
    }
    line
}
