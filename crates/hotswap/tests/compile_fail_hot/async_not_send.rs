// Without `#[hot(?Send)]` the future of a hot `async fn` must be `Send`: this one holds an `Rc`
// across an await. Only hot mode boxes the future as `Send`, so only hot mode refuses it (a
// normal build keeps the plain `async fn`).
use std::rc::Rc;

#[hotswap::hot]
pub async fn count(value: u32) -> u32 {
    let shared = Rc::new(value);
    std::future::ready(()).await;
    *shared + 1
}

fn main() {}
