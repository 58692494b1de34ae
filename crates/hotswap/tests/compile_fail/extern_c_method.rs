// Foreign code calls free functions by name, not methods: an `extern "C"` method stays refused.
pub struct Counter(u32);

#[hotswap::hot]
impl Counter {
    pub extern "C" fn get(&self) -> u32 {
        self.0
    }
}

fn main() {}
