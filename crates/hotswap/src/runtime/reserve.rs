//! Reserve (thin patches linked at a fixed address): address space kept for patches that share
//! the program's private statics.
//!
//! Code reaches a private static with a 32-bit PC-relative displacement, so a patch can reach
//! the program's copy only if it is linked, and loaded, within ±2 GiB of it at an address known
//! when it is linked. When it connects to the CLI the program maps 1 GiB of inaccessible address
//! space below the image the runtime is linked into (its executable, or the library a host
//! loaded; further away or above it when that is taken, within reach) and says where in its
//! `Hello`; the CLI links each such patch at a
//! range of its own inside it. Right before `dlopen` exactly that range is unmapped, so the
//! loader (which maps a shared object at its linked address when that is free) puts the patch
//! there; `load` then checks that it did (another thread's `mmap` may have taken the hole in
//! between) before anything reads or runs the patch. The rest of the reservation stays mapped
//! `PROT_NONE`, and a range released once is never given out again (the patch stays loaded
//! there; after a failed load something else may have been mapped there).

use std::ops::Range;
use std::sync::{Mutex, OnceLock};

use super::Runtime;
use crate::platform;
use crate::protocol::{Fixed, Reservation};

/// Environment variable that stops the program from reserving the range (`1`): its `Hello`
/// then says `reserved: None`, as when the range is taken. For tests of that fallback.
pub(crate) const NO_RESERVE_ENV: &str = "HOTSWAP_NO_RESERVE";

/// How much address space is reserved.
const SIZE: u64 = 1 << 30;
/// The reservation ends at least this far below the executable, and starts on a multiple of it.
const GAP: u64 = 2 << 20;

/// The range this process reserved, and which parts of it were released for patches.
struct Reserved {
    range: Range<u64>,
    load_bias: u64,
    /// Every range released for a patch (loaded there or not), oldest first.
    released: Mutex<Vec<Range<u64>>>,
}

/// Made once, when the runtime first connects to the CLI.
static RESERVED: OnceLock<Option<Reserved>> = OnceLock::new();

/// Reserves the range (once per process) and returns what the `Hello` says about it: `None` when
/// it could not be reserved or `HOTSWAP_NO_RESERVE=1` is set.
pub(crate) fn reserve(runtime: &Runtime) -> Option<Reservation> {
    let reserved = RESERVED.get_or_init(|| make(runtime)).as_ref()?;
    Some(Reservation {
        start: reserved.range.start,
        len: reserved.range.end - reserved.range.start,
        load_bias: reserved.load_bias,
    })
}

fn make(runtime: &Runtime) -> Option<Reserved> {
    if std::env::var_os(NO_RESERVE_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        runtime.info(&format!(
            "{NO_RESERVE_ENV} is set: no address range reserved for patches linked at a fixed \
             address"
        ));
        return None;
    }
    let Some(image) = platform::own_image() else {
        runtime.warn(
            "cannot find the image hotswap runs from: no address range reserved for patches \
             linked at a fixed address",
        );
        return None;
    };
    let (lowest, highest) = (image.lowest as u64, image.highest as u64);
    // Right below an executable is free; below a library the loader or the host may have
    // mapped something since (its dependencies, arenas): try further down, then above.
    let mut tried = None;
    for range in candidates(lowest, highest) {
        let (start, len) = (to_usize(range.start)?, to_usize(SIZE)?);
        match platform::reserve_range(start, len) {
            Ok(()) => {
                runtime.info(&format!(
                    "reserved {} for patches linked at a fixed address",
                    show(&range)
                ));
                return Some(Reserved {
                    range,
                    load_bias: image.load_bias as u64,
                    released: Mutex::new(Vec::new()),
                });
            }
            Err(err) => {
                tried.get_or_insert((range, err));
            }
        }
    }
    let (range, err) = tried?;
    runtime.warn(&format!(
        "cannot reserve {} (or another range within reach) next to {} for patches linked at a \
         fixed address ({err}); such patches cannot share its private statics",
        show(&range),
        if image.library {
            "the library"
        } else {
            "the executable"
        }
    ));
    None
}

/// Where the reservation may go, best first: `SIZE` bytes right below the image (see
/// [`below`]), then lower in steps of `STEP`, then above it, each entirely within 2 GiB of
/// every byte of the image `lowest..highest` (what a 32-bit displacement reaches).
fn candidates(lowest: u64, highest: u64) -> impl Iterator<Item = Range<u64>> {
    const STEP: u64 = 128 << 20;
    const REACH: u64 = (2 << 30) - GAP;
    let within = move |range: &Range<u64>| {
        highest.saturating_sub(range.start) < REACH && range.end.saturating_sub(lowest) < REACH
    };
    let down = (0..8u64).filter_map(move |k| {
        let first = below(lowest)?;
        let shift = k * STEP;
        (first.start > shift).then(|| first.start - shift..first.end - shift)
    });
    let up = (0..8u64).filter_map(move |k| {
        let start = highest.checked_add(GAP)?.checked_add(GAP - 1)? & !(GAP - 1);
        let start = start.checked_add(k * STEP)?;
        Some(start..start.checked_add(SIZE)?)
    });
    down.chain(up).filter(within)
}

/// `SIZE` bytes ending at least `GAP` below `lowest`, starting on a multiple of `GAP`.
fn below(lowest: u64) -> Option<Range<u64>> {
    let end = lowest.checked_sub(GAP)? & !(GAP - 1);
    let start = end.checked_sub(SIZE)?;
    (start > 0).then_some(start..end)
}

fn to_usize(value: u64) -> Option<usize> {
    usize::try_from(value).ok()
}

fn show(range: &Range<u64>) -> String {
    format!("0x{:x}..0x{:x}", range.start, range.end)
}

/// A fixed range checked to be free for a patch: page-aligned, inside the reservation, and not
/// released before. Nothing is released until [`Claim::release`].
#[derive(Debug)]
pub(crate) struct Claim {
    range: Range<u64>,
}

/// Checks the range a patch was linked for (before anything of the patch is mapped).
pub(crate) fn claim(fixed: Fixed) -> Result<Claim, String> {
    let wanted = fixed.base..fixed.base.checked_add(fixed.span).ok_or_else(|| {
        format!(
            "its fixed range (base 0x{:x}, span 0x{:x}) wraps around the address space",
            fixed.base, fixed.span
        )
    })?;
    let Some(reserved) = RESERVED.get().and_then(Option::as_ref) else {
        return Err(format!(
            "it was linked for the fixed range {}, but this program reserved no address range \
             for patches linked at a fixed address (its hello said so)",
            show(&wanted)
        ));
    };
    let page = platform::page_size() as u64;
    if fixed.span == 0 || fixed.base % page != 0 || fixed.span % page != 0 {
        return Err(format!(
            "its fixed range {} is not page-aligned or is empty (pages are {page} bytes)",
            show(&wanted)
        ));
    }
    if wanted.start < reserved.range.start || wanted.end > reserved.range.end {
        return Err(format!(
            "its fixed range {} is outside the range this program reserved ({})",
            show(&wanted),
            show(&reserved.range)
        ));
    }
    let released = reserved
        .released
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(earlier) = overlapping(&released, &wanted) {
        return Err(format!(
            "its fixed range {} overlaps the range {} released for an earlier patch",
            show(&wanted),
            show(earlier)
        ));
    }
    Ok(Claim { range: wanted })
}

fn overlapping<'a>(released: &'a [Range<u64>], wanted: &Range<u64>) -> Option<&'a Range<u64>> {
    released
        .iter()
        .find(|r| r.start < wanted.end && wanted.start < r.end)
}

impl Claim {
    /// Refuses a patch whose loadable segments (its link-time addresses, read from the file)
    /// do not lie inside the range: the loader could not put it there.
    pub fn holds(&self, image: &Range<u64>) -> Result<(), String> {
        if image.start < image.end && self.range.start <= image.start && image.end <= self.range.end
        {
            Ok(())
        } else {
            Err(format!(
                "its loadable segments ({}) are not inside its fixed range {} (it was linked \
                 for another address than the message says)",
                show(image),
                show(&self.range)
            ))
        }
    }

    /// Unmaps exactly the claimed range, for the `dlopen` that follows, and counts it as used
    /// from now on whatever that load does. Returns the patch's base.
    pub fn release(self) -> Result<u64, String> {
        let reserved = RESERVED
            .get()
            .and_then(Option::as_ref)
            .ok_or("no reservation")?;
        let mut released = reserved
            .released
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Checked again under the lock that records it (patches are applied one at a time, so
        // this cannot fail today; it keeps the unmap below sound if that ever changes).
        if let Some(earlier) = overlapping(&released, &self.range) {
            return Err(format!(
                "its fixed range {} overlaps the range {} released for an earlier patch",
                show(&self.range),
                show(earlier)
            ));
        }
        let (start, len) = to_usize(self.range.start)
            .zip(to_usize(self.range.end - self.range.start))
            .ok_or("the fixed range does not fit this machine's addresses")?;
        released.push(self.range.clone());
        // SAFETY: `claim` checked the range is inside the reservation `reserve_range` mapped,
        // and it overlaps no range released before (checked again just above, under the lock
        // that records releases): it is still our `PROT_NONE` mapping, which nothing reads,
        // writes or points into.
        if let Err(err) = unsafe { platform::release_range(start, len) } {
            released.pop();
            return Err(format!(
                "cannot release its fixed range {}: {err}",
                show(&self.range)
            ));
        }
        Ok(self.range.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_ends_two_mib_below_the_executable_on_a_two_mib_boundary() {
        let range = below(0x5555_5555_4000).unwrap();
        assert_eq!(range.end, 0x5555_5520_0000);
        assert_eq!(range.end - range.start, SIZE);
        assert_eq!(range.start % GAP, 0);
        assert!(0x5555_5555_4000 - range.end >= GAP);
        assert_eq!(below(0x5555_5560_0000).unwrap().end, 0x5555_5540_0000);
        assert_eq!(below(SIZE), None);
        assert_eq!(below(GAP), None);
    }

    /// Below first, then further down, then above; every candidate within 2 GiB of every byte
    /// of the image (a library of 64 MiB here), each `SIZE` long and on a `GAP` boundary.
    #[test]
    fn candidates_start_below_and_stay_within_reach_of_the_whole_image() {
        let (lowest, highest) = (0x7f00_0000_0000u64, 0x7f00_0400_0000u64);
        let all: Vec<Range<u64>> = candidates(lowest, highest).collect();
        assert_eq!(all.first(), below(lowest).as_ref());
        assert!(all.iter().any(|r| r.start >= highest), "no candidate above");
        for range in &all {
            assert_eq!(range.end - range.start, SIZE);
            assert_eq!(range.start % GAP, 0);
            assert!(
                range.end <= lowest || range.start >= highest,
                "{range:x?} overlaps"
            );
            assert!(
                highest - range.start.min(lowest) < 2 << 30,
                "{range:x?} out of reach"
            );
            assert!(
                range.end.max(highest) - lowest < 2 << 30,
                "{range:x?} out of reach"
            );
        }
    }

    #[test]
    fn overlap_is_half_open() {
        let released = [0x1000..0x3000, 0x5000..0x6000];
        assert!(overlapping(&released, &(0x3000..0x4000)).is_none());
        assert!(overlapping(&released, &(0x0..0x1000)).is_none());
        assert!(overlapping(&released, &(0x2000..0x4000)).is_some());
        assert!(overlapping(&released, &(0x0..0x8000)).is_some());
    }
}
