//! Swap: write every slot of a checked patch. Nothing here can fail, so a patch that reached
//! this point is swapped whole; every earlier failure leaves all slots untouched.

use super::check::Plan;
use super::PatchKind;

/// Points each slot at the patch's code; returns how many functions were replaced.
pub(crate) fn apply(plan: &Plan, kind: PatchKind) -> usize {
    for swap in &plan.swaps {
        let target = match kind {
            // A self-contained library has its own `std`: its panics must be caught inside it.
            PatchKind::Full => swap.guarded,
            PatchKind::Thin => swap.implementation,
        };
        swap.slot.set(target);
    }
    plan.swaps.len()
}
