//! `zcp recv --mirror`: once every offered entry landed, checked, or was already there, the
//! entries the offer does not hold are removed from the directories it holds (as `rsync
//! --delete` does: nothing outside them, so the rest of the output directory is left alone).
//! A session with a refusal or a failed file removes nothing. The removing is `disk::prune`.

use std::collections::HashSet;

use crate::disk::{Destination, Pruned};
use crate::protocol::{Entry, EntryKind};
use crate::report::{FileReport, Status};

/// Why nothing was removed, when the session did not go through whole.
pub(super) struct Incomplete(pub usize);

/// Removes what the offer does not hold from the directories it holds, when every entry's
/// report says it is there (`reports`, one per entry); else removes nothing.
pub(super) fn mirror(
    dest: &Destination,
    entries: &[Entry],
    reports: &[FileReport],
) -> anyhow::Result<Result<Pruned, Incomplete>> {
    let failed = reports
        .iter()
        .filter(|r| matches!(r.status, Status::Refused | Status::ChecksumMismatch))
        .count();
    if failed > 0 {
        return Ok(Err(Incomplete(failed)));
    }
    let offered: HashSet<&[u8]> = entries.iter().map(|e| e.name.as_slice()).collect();
    let dirs = entries.iter().filter(|e| e.kind == EntryKind::Dir).map(|e| e.name.as_slice());
    dest.prune(dirs, |name| offered.contains(name)).map(Ok)
}
