//! One receiving session on its socket, once the sender authenticated: the offer and the plan,
//! every file's bytes (small ones from the read-ahead and handed to the writer threads, the
//! others by the configured data path straight into their part files), each checked against
//! its digest and put in place, then the summary.

use anyhow::Context;

use super::intake::{self, refuse_written};
use super::mirror;
use super::plan::{self, SessionPlan};
use crate::config::RecvConfig;
use crate::copy::Timed;
use crate::copy::batch::Inbox;
use crate::copy::socket::Socket;
use crate::datapath::Encryption;
use crate::disk::{self, Barrier, Decision, Destination};
use crate::error::{ExitCode, exit_code, idle_in};
use crate::link::peer::{self, unexpected};
use crate::progress::Ui;
use crate::protocol::{self, Entry, ErrorCode, Message, Summary};
use crate::report::Report;
use crate::report::events::{Event, Events};
use crate::role::Role;
use crate::sys::rusage;

/// What one session reads: the receiver's options and destination, and the channel's
/// protection (for the report).
pub(super) struct Session<'r> {
    pub cfg: &'r RecvConfig,
    pub dest: &'r Destination,
    pub encryption: Encryption,
}

impl Session<'_> {
    /// One session, from the offer to the end, on a socket whose handshake passed; the offer
    /// is read against the handshake's deadline (`handshake`). `data_starts` is called once the
    /// plan is sent and file data may flow.
    pub fn serve(
        &self,
        socket: &mut Socket,
        mut handshake: peer::Deadline,
        data_starts: impl FnOnce(),
    ) -> anyhow::Result<Report> {
        // Writes may stall too (a sender that stops reading): bound them like idle reads.
        socket.set_write_timeout(self.cfg.net.idle_timeout).context("setting the write timeout")?;
        let offer = match handshake.next_message("the sender's offer") {
            Ok(Message::Offer(offer)) => offer,
            Ok(other) => return Err(tell_peer(socket, unexpected("OFFER", &other))),
            Err(e) => return Err(tell_peer(socket, e)),
        };
        if let Err(e) = plan::check_bounds(&offer.entries) {
            return Err(tell_peer(socket, e.into()));
        }
        match self.dest.directory_for(&offer.entries) {
            Ok(None) => self.serve_offer(socket, offer, None, data_starts),
            Ok(Some((dir, created))) => {
                let encryption = self.encryption.clone();
                let session = Session { cfg: self.cfg, dest: &dir, encryption };
                let created = created.then(|| self.cfg.output.display().to_string());
                session.serve_offer(socket, offer, created, data_starts)
            }
            Err(e) => Err(tell_peer(socket, e)),
        }
    }

    /// The session after the offer: the plan, the files, the summary. `created` names the
    /// output directory this session created, for the report.
    fn serve_offer(
        &self,
        socket: &mut Socket,
        offer: protocol::Offer,
        created: Option<String>,
        data_starts: impl FnOnce(),
    ) -> anyhow::Result<Report> {
        let mut plan = plan::plan(&offer.entries, self.dest, self.cfg);
        protocol::write_plan(&mut Timed::replying(socket.stream()), plan.answers())
            .context("sending the plan")?;
        peer::set_timeout(socket, self.cfg.net.idle_timeout)?;
        data_starts();
        let start = rusage::Snapshot::now();
        let mut inbox = Inbox::new(socket.stream());
        let barrier = self.cfg.fsync.then(|| Barrier::new(self.cfg.policy.force, self.sessions()));
        let events = Events::new(self.cfg.print.events);
        let received = intake::receive_all(
            self.cfg,
            self.dest,
            &mut inbox,
            &offer.entries,
            &mut plan,
            barrier.as_ref(),
            &events,
        );
        // The files held for --fsync get their names before directory modes are applied (a
        // read-only mode would stop the renames).
        let placed =
            received.and_then(|t| barrier.as_ref().map_or(Ok(()), Barrier::flush).map(|_| t));
        let total = match placed {
            Ok(total) => total,
            Err(e) => return Err(tell_peer(socket, self.explain_idle(e))),
        };
        self.finish_dirs(&offer.entries, &plan)?;
        if let Some(barrier) = &barrier
            && let Err(e) = self.sync_dirs(barrier, &offer.entries, &plan, created.is_some())
        {
            // Every file already has its name: say so, and that --fsync's promise does not hold.
            let e = e.context("the files are in place, but not known to be durable (--fsync)");
            return Err(tell_peer(socket, e));
        }
        // Files the barrier could not name (the name was taken meanwhile): refused alone.
        let refused = barrier.as_ref().map(Barrier::take_refused).unwrap_or_default();
        refuse_written(&mut plan, refused, &events);
        let sender = self.sender_stats(&mut inbox)?;
        let removed = self.mirror(&offer.entries, &plan, &events)?;
        let stats = start.side_stats(&total);
        let summary = Summary { verdicts: plan.verdicts.clone(), stats: stats.clone() };
        protocol::write_message(&mut Timed::replying(socket.stream()), &Message::Summary(summary))
            .context("sending the summary")?;
        let report = Report {
            role: Role::Receiver,
            files: plan.reports,
            send: sender,
            recv: stats,
            created,
            encryption: self.encryption.clone(),
            excluded: 0,
            removed,
        };
        events.finished(&report);
        Ok(report)
    }

    /// Gives the directories this session created their modes and times, and says when the
    /// file system keeps no modes. Only those: a refused one (unsafe name, a symlink in the
    /// way) has nothing to finish, and must not fail the session.
    fn finish_dirs(&self, entries: &[Entry], plan: &SessionPlan) -> anyhow::Result<()> {
        let dirs = entries.iter().zip(&plan.decisions).rev();
        let made = dirs.filter(|(_, d)| matches!(d, Ok(Decision::Dir { created: true })));
        self.dest.finish_dirs(made.map(|(entry, _)| entry), self.cfg.policy)?;
        if let Some(errno) = self.dest.modes_refused() {
            Ui::hidden().warn(&format!(
                "{}: the file system keeps no Unix modes (chmod: {}): what landed has the modes it gives",
                self.cfg.output.display(),
                errno.desc()
            ));
        }
        Ok(())
    }

    /// Reads the sender's FINISH, which carries its statistics.
    fn sender_stats(&self, inbox: &mut Inbox<'_>) -> anyhow::Result<protocol::SideStats> {
        let idle = self.cfg.net.idle_timeout;
        match peer::next_message_from(inbox, idle, "the sender's statistics")? {
            Message::Finish(stats) => Ok(stats),
            other => Err(unexpected("FINISH", &other)),
        }
    }

    /// `--mirror`, after every file landed and the sender finished: removes what the offer
    /// does not hold (see `mirror`), each removal an event; returns what was removed.
    fn mirror(
        &self,
        entries: &[Entry],
        plan: &SessionPlan,
        events: &Events,
    ) -> anyhow::Result<Vec<String>> {
        if !self.cfg.mirror {
            return Ok(Vec::new());
        }
        let ui = Ui::hidden();
        let pruned = match mirror::mirror(self.dest, entries, &plan.reports)? {
            Ok(pruned) => pruned,
            Err(mirror::Incomplete(failed)) => {
                let what = if failed == 1 { "entry" } else { "entries" };
                ui.warn(&format!("--mirror: nothing removed: {failed} {what} did not land"));
                return Ok(Vec::new());
            }
        };
        pruned.left.iter().for_each(|why| ui.warn(&format!("--mirror: left {why}")));
        for name in &pruned.removed {
            events.emit(&Event::FileRemove { name });
        }
        Ok(pruned.removed)
    }

    /// `--fsync`, after the last barrier: syncs every directory that gained a name (those
    /// holding new files, the parents of directories this session created, and the parent of
    /// an output directory it created), so the names survive a power loss too.
    fn sync_dirs(
        &self,
        barrier: &Barrier,
        entries: &[Entry],
        plan: &SessionPlan,
        created_output: bool,
    ) -> anyhow::Result<()> {
        for (entry, decision) in entries.iter().zip(&plan.decisions) {
            if let Ok(Decision::Dir { created: true }) = decision {
                let parent = entry.name.iter().rposition(|&b| b == b'/').unwrap_or(0);
                barrier.gained_name(&entry.name[..parent]);
            }
        }
        barrier.finish(self.dest)?;
        if created_output {
            disk::sync_parent_of(&self.cfg.output)?;
        }
        Ok(())
    }

    /// Sessions that may run at once, sharing the process's descriptors.
    fn sessions(&self) -> u32 {
        self.cfg.mode.sessions_at_once()
    }

    /// Says what an idle timeout left behind.
    fn explain_idle(&self, err: anyhow::Error) -> anyhow::Error {
        match idle_in(&err) {
            Some(_) => err.context("the sender stalled; partial files kept"),
            None => err,
        }
    }
}

/// What a sender is told when a signal stops the receiver.
pub(super) const SHUT_DOWN: &str = "receiver shut down";

/// Tells the sender why this end gives up, when the sender can still hear it, and passes the
/// error on.
fn tell_peer(socket: &mut Socket, err: anyhow::Error) -> anyhow::Error {
    let code = match exit_code(&err) {
        // Stopped by a signal mid-file: told as every sender is at a stop (`stop_all`).
        ExitCode::Interrupted | ExitCode::Terminated => {
            peer::fail_with(socket, ErrorCode::Interrupted, SHUT_DOWN);
            return err;
        }
        ExitCode::Io => Some(ErrorCode::Io),
        ExitCode::Protocol => Some(ErrorCode::Protocol),
        ExitCode::Refused => Some(ErrorCode::Limit),
        // The receiver broke the session off: the sender exits 3 (a timeout), not 5.
        ExitCode::Connection if idle_in(&err).is_some() => Some(ErrorCode::Interrupted),
        _ => None,
    };
    if let Some(code) = code {
        peer::fail_with(socket, code, &format!("receiver: {err:#}"));
    }
    err
}
