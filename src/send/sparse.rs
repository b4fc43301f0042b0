//! Sending a file in the sparse form: where the receiver takes it and the source
//! has holes worth skipping, each run's header goes out, then its data range by the session's
//! data path; holes never cross. The wire form is in `protocol`; the runs come from
//! `copy::holes`.

use crate::checksum::Xxh3;
use anyhow::Context;

use super::Push;
use crate::copy::holes::{self, Run};
use crate::copy::source::Source;
use crate::copy::{self, Moved, batch};
use crate::protocol::{self, FileEnd, Message};
use crate::report::FileReport;

impl Push<'_> {
    /// The runs to send `source` from `offset` in the sparse form, when the receiver takes it
    /// and the source has holes worth skipping (never for a file that could go batched).
    pub(super) fn runs(&self, source: &Source, offset: u64) -> anyhow::Result<Option<Vec<Run>>> {
        match source.size {
            Some(size) if self.sparse && size > batch::SMALL_FILE => {
                holes::runs(&source.file, offset, size)
                    .with_context(|| format!("finding the holes of {}", source.display))
            }
            _ => Ok(None),
        }
    }

    /// Sends one file in the sparse form: each run's header, then its data range by the
    /// configured data path (zero-copy per range); holes never cross. The checksum still
    /// covers the whole file: the prefix and each range read back, each hole as zeros (in a
    /// star, the digest the sessions share, which reads the holes back as zeros).
    pub(super) fn sparse(
        &mut self,
        index: usize,
        source: &Source,
        offset: u64,
        runs: &[Run],
        report: &mut FileReport,
    ) -> anyhow::Result<Moved> {
        let start = Message::SparseStart { index: index as u32, offset };
        self.pending.extend(protocol::frame(&start));
        let mut hasher = Xxh3::new();
        let mut file = Moved::default();
        let hashing = |e| anyhow::Error::from(e).context(format!("hashing {}", source.display));
        let shared = self.digests.zip(source.size);
        if let Some((digests, size)) = shared {
            digests.start(index, &source.file, size);
        } else {
            file.checksum_calls +=
                copy::hash_prefix(&source.file, offset, &mut hasher).map_err(hashing)?;
        }
        for run in runs {
            // The header leaves first, so the receiver hashes the hole's zeros while this end
            // does (the two ends' hashing of holes is most of a sparse file's time).
            self.pending.extend(protocol::sparse_run_header(run.hole, run.data));
            self.send_pending()?;
            hasher.update_zeros(run.hole);
            report.holes += run.hole;
            self.ui.skip(run.hole);
            if run.data == 0 {
                continue;
            }
            let window = source.window(run.at + run.data)?;
            let moved = self
                .push(&window, run.at, self.total.bytes + file.bytes, false)
                .with_context(|| format!("sending {}", source.display))?;
            file.absorb(moved);
            if shared.is_none() {
                let end = run.at + run.data;
                file.checksum_calls +=
                    copy::hash_range(&source.file, run.at, end, &mut hasher).map_err(hashing)?;
            }
        }
        file.files = 1;
        file.xxh3 = match shared {
            Some((digests, size)) => self.shared_digest(digests, index, source, size)?,
            None => hasher.digest128(),
        };
        self.pending.extend(protocol::frame(&Message::FileEnd(FileEnd { xxh3: file.xxh3 })));
        Ok(file)
    }
}
