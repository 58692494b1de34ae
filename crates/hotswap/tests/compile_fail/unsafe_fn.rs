// An `unsafe fn` cannot sit behind the safe function pointer of its slot.
#[hotswap::hot]
pub unsafe fn read(pointer: *const u32) -> u32 {
    unsafe { *pointer }
}

fn main() {}
