//! The receiver's plan for one offer, decided before any byte arrives: what each entry becomes
//! (received, resumed, skipped, refused), whether the session fits `--max-size` and the disk,
//! which files come batched, and how far the read-ahead may read. Pure decisions over the
//! offer and the destination's answers; no socket.

use humansize::{BINARY, format_size};

use super::offer::Clashes;
use crate::config::RecvConfig;
use crate::copy::batch::SMALL_FILE;
use crate::datapath::{DataPath, Method};
use crate::disk::{Decision, Destination, Listing, Refusal};
use crate::error::SessionError;
use crate::protocol::{self, Answer, Entry, EntryKind, RefuseCode, Verdict, names};
use crate::report::{FileReport, Status};

/// Decides every entry, then refuses the lot when it would not fit, removing the directories
/// deciding created.
pub(super) fn plan(entries: &[Entry], dest: &Destination, cfg: &RecvConfig) -> SessionPlan {
    let mut plan = SessionPlan::with_capacity(entries.len());
    let clashes = Clashes::find(entries);
    let mut listing = Listing::default();
    for (i, entry) in entries.iter().enumerate() {
        let decision = if dest.single() && i > 0 {
            Err(Refusal::new(
                RefuseCode::Unsupported,
                "the receiver's --output names one file, taken by the first entry",
            ))
        } else if clashes.twice(i) {
            Err(Refusal::new(RefuseCode::Exists, "the offer names it twice"))
        } else if let Some(file) = clashes.inside(i) {
            Err(inside_file(&entries[file].name))
        } else if clashes.holds(i).is_some() {
            Err(Refusal::new(
                RefuseCode::InvalidName,
                "offered as a file, but earlier entries of this offer lie inside it",
            ))
        } else {
            dest.decide(entry, cfg.policy, &mut listing)
        };
        plan.push(entry, decision);
    }
    let needed = plan.needed(entries);
    if let Some(why) = too_big(needed, cfg.max_size, || dest.free_space()) {
        plan.refuse_all(RefuseCode::NoSpace, &why);
        dest.undo(&listing);
    }
    plan
}

/// The refusal of an entry inside a file entry of the same offer.
fn inside_file(file: &[u8]) -> Refusal {
    let file = String::from_utf8_lossy(file);
    Refusal::new(
        RefuseCode::InvalidName,
        format!("it lies inside {file:?}, which this offer sends as a file, not a directory"),
    )
}

/// Checks the offer against the session bounds (`protocol::names::offer_bounds`) before it is
/// planned: past one, the whole session is refused and nothing is created.
pub(super) fn check_bounds(entries: &[Entry]) -> Result<(), SessionError> {
    names::offer_bounds(entries)
        .map_err(|reason| SessionError::Refused { name: "the offer".into(), reason })
}

/// Why a session that needs `needed` bytes cannot be taken: over `max_size`, or more than the
/// disk has free (asked only when the size limit passes).
fn too_big(
    needed: u64,
    max_size: Option<u64>,
    free: impl FnOnce() -> Option<u64>,
) -> Option<String> {
    if let Some(max) = max_size.filter(|&max| needed > max) {
        return Some(format!(
            "session needs {}, more than the receiver's --max-size {}",
            size(needed),
            size(max)
        ));
    }
    let free = free()?;
    (needed > free).then(|| format!("session needs {}, {} free", size(needed), size(free)))
}

/// Bytes that files of these `(size, resume offset)` need, added without wrapping: sizes an
/// offer makes up to overflow u64 must not add up to something small.
fn bytes_needed(files: impl Iterator<Item = (Option<u64>, u64)>) -> u64 {
    files
        .map(|(size, offset)| size.unwrap_or(0).saturating_sub(offset))
        .fold(0, u64::saturating_add)
}

/// How a file's bytes come off the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Way {
    /// In the read-ahead with its neighbours, then handed to the writer threads.
    Batched,
    /// By the configured data path, straight into its part file (or standard output).
    Spliced,
}

/// How a file comes: batched when it is small, of known size, new (no part file of an
/// earlier transfer to reuse or remove), and `--method` does not insist on splice.
pub(super) fn way(method: Method, entry: &Entry, decision: &Result<Decision, Refusal>) -> Way {
    let batched = matches!(method, Method::Auto | Method::Only(DataPath::Buffered))
        && entry.size.is_some_and(|s| s <= SMALL_FILE)
        && matches!(decision, Ok(Decision::Receive { offset: 0, part: false, .. }));
    if batched { Way::Batched } else { Way::Spliced }
}

/// For each wanted file, from its FILE_START on, how many bytes the read-ahead may take: the
/// frames and bytes of the run of batched files it starts, then the FILE_START of the next
/// file that is spliced (whose bytes must stay in the socket); `None` when none follows.
pub(super) fn read_ahead(wanted: &[usize], ways: &[Way], entries: &[Entry]) -> Vec<Option<u64>> {
    let frames = (protocol::FILE_START_FRAME + protocol::FILE_END_FRAME) as u64;
    let mut ahead = vec![None; wanted.len() + 1];
    for k in (0..wanted.len()).rev() {
        ahead[k] = match ways[k] {
            Way::Batched => {
                let size = entries[wanted[k]].size.unwrap_or(0);
                ahead[k + 1].map(|a| a + frames + size)
            }
            Way::Spliced => Some(protocol::FILE_START_FRAME as u64),
        };
    }
    ahead
}

pub(super) fn size(bytes: u64) -> String {
    format_size(bytes, BINARY)
}

/// The decisions, answers, reports and verdicts of one session, entry by entry.
#[derive(Default)]
pub(super) struct SessionPlan {
    pub decisions: Vec<Result<Decision, Refusal>>,
    pub reports: Vec<FileReport>,
    pub verdicts: Vec<Verdict>,
}

impl SessionPlan {
    fn with_capacity(entries: usize) -> SessionPlan {
        SessionPlan {
            decisions: Vec::with_capacity(entries),
            reports: Vec::with_capacity(entries),
            verdicts: Vec::new(),
        }
    }

    fn push(&mut self, entry: &Entry, decision: Result<Decision, Refusal>) {
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        let dir = entry.kind == EntryKind::Dir;
        let mut report = FileReport::new(name, dir, Status::Sent);
        match &decision {
            Ok(Decision::Dir { .. }) => report.status = Status::Created,
            Ok(Decision::Skip) => report.status = Status::Skipped,
            Err(r) => {
                report.status = Status::Refused;
                report.reason = Some(r.reason.clone());
            }
            Ok(Decision::Receive { .. } | Decision::Stdout | Decision::Compare { .. }) => {}
        }
        self.reports.push(report);
        self.decisions.push(decision);
    }

    /// Refuses every entry that was to be received or created: the session is refused.
    fn refuse_all(&mut self, code: RefuseCode, why: &str) {
        for (d, r) in self.decisions.iter_mut().zip(&mut self.reports) {
            let wanted = matches!(d, Ok(Decision::Receive { .. } | Decision::Stdout));
            if wanted || matches!(d, Ok(Decision::Dir { .. } | Decision::Compare { .. })) {
                *d = Err(Refusal::new(code, why));
                r.status = Status::Refused;
                r.reason = Some(why.to_string());
            }
        }
    }

    /// Bytes the session still writes: what the received entries have beyond the offset each
    /// resumes from, standard output's file included (its holes become written zeros).
    /// Saturates: offered sizes that add up past u64 stay too big.
    fn needed(&self, entries: &[Entry]) -> u64 {
        bytes_needed(self.decisions.iter().zip(entries).filter_map(|(d, e)| match d {
            Ok(Decision::Receive { offset, .. }) => Some((e.size, *offset)),
            Ok(Decision::Stdout) => Some((e.size, 0)),
            _ => None,
        }))
    }

    /// Indices of the entries whose bytes must come, in order.
    pub fn wanted(&self) -> Vec<usize> {
        self.decisions
            .iter()
            .enumerate()
            .filter(|(_, d)| {
                matches!(
                    d,
                    Ok(Decision::Receive { .. } | Decision::Stdout | Decision::Compare { .. })
                )
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Turns entry `index`, whose bytes came and checked, into a refusal for `reason` (its name
    /// was taken when it was to be put in place): its report, and its verdict, the one at its
    /// place among the files sent. Returns its report, for the `file_refuse` event.
    pub fn refuse_written(&mut self, index: usize, reason: String) -> Option<&FileReport> {
        let k = self.wanted().iter().position(|&i| i == index)?;
        let verdict = self.verdicts.get_mut(k)?;
        *verdict = Verdict { status: protocol::VerdictStatus::Failed, detail: reason.clone() };
        let report = self.reports.get_mut(index)?;
        (report.status, report.saved_as, report.reason) = (Status::Refused, None, Some(reason));
        Some(report)
    }

    /// The index of the entry whose bytes go to `target`.
    pub fn index_of(&self, target: &crate::disk::Target) -> Option<usize> {
        self.decisions.iter().position(|d| match d {
            Ok(Decision::Receive { target: t, .. } | Decision::Compare { target: t, .. }) => {
                t.shown() == target.shown()
            }
            _ => false,
        })
    }

    /// The PLAN frame's answers, one per entry, made as they are sent.
    pub fn answers(&self) -> impl ExactSizeIterator<Item = Answer> + '_ {
        self.decisions.iter().map(|d| match d {
            Ok(Decision::Receive { offset: 0, .. } | Decision::Stdout) => {
                Answer::Send { offset: 0 }
            }
            Ok(Decision::Receive { offset, prefix_xxh3, .. }) => {
                Answer::Resume { offset: *offset, prefix_xxh3: *prefix_xxh3 }
            }
            // Resuming from its last byte: the sender sends nothing if its file hashes the same,
            // else all of it (any sender of protocol 2 does).
            Ok(Decision::Compare { size, xxh3, .. }) => {
                Answer::Resume { offset: *size, prefix_xxh3: *xxh3 }
            }
            Ok(Decision::Dir { .. } | Decision::Skip) => Answer::Skip,
            Err(r) => Answer::Refuse { code: r.code, reason: r.reason.clone() },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64) -> Entry {
        Entry {
            kind: EntryKind::File,
            name: b"f".to_vec(),
            size: Some(size),
            mode: 0o644,
            mtime_sec: 0,
            mtime_nsec: 0,
        }
    }

    #[test]
    fn offered_sizes_that_overflow_add_up_to_the_most_not_wrap() {
        let max = u64::MAX;
        assert_eq!(bytes_needed([(Some(max), 0), (Some(max), 0), (Some(3), 0)].into_iter()), max);
        assert_eq!(bytes_needed([(Some(10), 4), (None, 0), (Some(5), 9)].into_iter()), 6);
    }

    #[test]
    fn a_session_over_max_size_or_free_space_is_too_big() {
        let free_never_asked =
            || -> Option<u64> { panic!("free space asked after --max-size refused") };
        let over = too_big(2 << 20, Some(1 << 20), free_never_asked).expect("over --max-size");
        assert!(over.contains("more than the receiver's --max-size 1 MiB"), "{over}");
        assert_eq!(too_big(1 << 20, Some(1 << 20), || Some(1 << 20)), None, "exactly fits");
        let full = too_big(5, None, || Some(4)).expect("more than free");
        assert_eq!(full, "session needs 5 B, 4 B free");
        assert_eq!(too_big(5, None, || None), None, "free space unknown: taken");
    }

    #[test]
    fn only_small_new_files_of_known_size_come_batched() {
        let new = Ok(Decision::Stdout);
        assert_eq!(way(Method::Auto, &file(10), &new), Way::Spliced, "standard output");
        let refused = Err(Refusal::new(RefuseCode::Exists, "x"));
        assert_eq!(way(Method::Auto, &file(10), &refused), Way::Spliced);
    }

    #[test]
    fn the_read_ahead_stops_at_the_first_byte_of_a_spliced_file() {
        let entries = [file(100), file(200), file(1 << 20), file(50)];
        let start = protocol::FILE_START_FRAME as u64;
        let frames = start + protocol::FILE_END_FRAME as u64;
        let ways = [Way::Batched, Way::Batched, Way::Spliced, Way::Batched];
        let ahead = read_ahead(&[0, 1, 2, 3], &ways, &entries);
        assert_eq!(ahead[2], Some(start), "a spliced file: only its FILE_START");
        assert_eq!(ahead[1], Some(start + frames + 200));
        assert_eq!(ahead[0], Some(start + 2 * frames + 300));
        assert_eq!(ahead[3], None, "small files with no spliced file after them: unbounded");
        assert_eq!(ahead[4], None);
    }

    #[test]
    fn the_plan_frame_answers_each_decision() {
        let mut plan = SessionPlan::default();
        plan.push(&file(1), Ok(Decision::Stdout));
        plan.push(&file(1), Ok(Decision::Skip));
        plan.push(&file(1), Err(Refusal::new(RefuseCode::Exists, "there")));
        assert_eq!(plan.wanted(), vec![0]);
        plan.refuse_all(RefuseCode::NoSpace, "full");
        assert!(plan.wanted().is_empty(), "a refused session wants nothing");
        let answers: Vec<Answer> = plan.answers().collect();
        assert!(
            matches!(&answers[0], Answer::Refuse { code: RefuseCode::NoSpace, reason } if reason == "full")
        );
        assert!(matches!(answers[1], Answer::Skip));
        assert!(matches!(&answers[2], Answer::Refuse { code: RefuseCode::Exists, .. }));
        assert_eq!(plan.reports[0].status, Status::Refused);
        assert_eq!(plan.reports[1].status, Status::Skipped);
    }
}
