//! Swap: write every slot of a checked patch. Nothing here can fail, so a patch that reached
//! this point is swapped whole; every earlier failure leaves all slots untouched.

use super::check::Plan;
use super::PatchKind;
use crate::__private::Slot;

/// One slot written by a patch: what it held before and what it holds now.
pub(crate) struct Written {
    pub slot: &'static Slot,
    pub before: *const (),
    pub after: *const (),
}

// SAFETY: the pointers are addresses of code that is never unloaded.
unsafe impl Send for Written {}

/// Points each slot at the patch's code.
///
/// `guarded` sends calls through the patch's panic guard: always for a self-contained library
/// (it has its own `std`, so its panics must be caught inside it), and for thin patches under
/// the roll-back policy (so a panic is noticed).
pub(crate) fn apply(plan: &Plan, kind: PatchKind, guarded: bool) -> Vec<Written> {
    plan.swaps
        .iter()
        .map(|swap| {
            let after = if kind == PatchKind::Full || guarded {
                swap.guarded
            } else {
                swap.implementation
            };
            let before = swap.slot.get();
            swap.slot.set(after);
            Written {
                slot: swap.slot,
                before,
                after,
            }
        })
        .collect()
}

/// Puts back what a patch replaced, where the patch's code is still in place.
pub(crate) fn undo(written: &[Written]) -> usize {
    written
        .iter()
        .filter(|w| w.slot.get() == w.after)
        .map(|w| w.slot.set(w.before))
        .count()
}
