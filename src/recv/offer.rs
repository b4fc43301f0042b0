//! What an offer says about itself, checked before anything touches the disk: no name twice,
//! and nothing inside an entry this same offer sends as a file. One pass over the names,
//! linear in their bytes, borrowing them from the offer.

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;

use crate::disk::Refusal;
use crate::protocol::{EntryKind, RefuseCode};

/// The offer's names as a tree of components, each node keyed by its parent and its name.
#[derive(Default)]
pub(super) struct OfferTree<'o> {
    nodes: HashMap<(u32, &'o [u8]), Node>,
}

#[derive(Clone, Copy)]
struct Node {
    id: u32,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A directory that other names pass through but no entry offers itself.
    Implied,
    /// An entry refused for what is on disk: others may pass through it and be judged there.
    Refused,
    Dir,
    File,
}

impl<'o> OfferTree<'o> {
    /// Adds an entry's `name` (a valid name, see `protocol::names`) of `kind`; refuses it when
    /// the offer named it before, when it lies inside a file of the offer, or when it is a
    /// file that earlier entries lie inside. Only the later of two such entries is refused.
    pub fn add(&mut self, name: &'o [u8], kind: EntryKind) -> Result<(), Refusal> {
        let mut parent = 0;
        let mut at = 0;
        let mut parts = name.split(|&b| b == b'/').peekable();
        while let Some(part) = parts.next() {
            at += part.len() + usize::from(at > 0);
            let last = parts.peek().is_none();
            let fresh = u32::try_from(self.nodes.len() + 1).unwrap_or(u32::MAX);
            let node = match self.nodes.entry((parent, part)) {
                Slot::Vacant(slot) => {
                    let kind = match (last, kind) {
                        (false, _) => Kind::Implied,
                        (true, EntryKind::Dir) => Kind::Dir,
                        (true, EntryKind::File) => Kind::File,
                    };
                    slot.insert(Node { id: fresh, kind });
                    fresh
                }
                Slot::Occupied(mut slot) => {
                    let node = *slot.get();
                    match (last, node.kind, kind) {
                        (false, Kind::File, _) => return Err(inside_file(&name[..at])),
                        (false, _, _) => {}
                        (true, Kind::Implied, EntryKind::Dir) => slot.get_mut().kind = Kind::Dir,
                        (true, Kind::Implied, EntryKind::File) => return Err(holds_others()),
                        (true, _, _) => {
                            return Err(Refusal::new(
                                RefuseCode::Exists,
                                "the offer names it twice",
                            ));
                        }
                    }
                    node.id
                }
            };
            parent = node;
        }
        Ok(())
    }

    /// Marks an added entry as refused after all (for what the disk holds): entries below it
    /// are then judged by the disk, and the name offered again is still refused as a repeat.
    pub fn refused(&mut self, name: &'o [u8]) {
        let mut parent = 0;
        let mut parts = name.split(|&b| b == b'/').peekable();
        while let Some(part) = parts.next() {
            let Some(node) = self.nodes.get_mut(&(parent, part)) else { return };
            if parts.peek().is_none() && node.kind != Kind::Implied {
                node.kind = Kind::Refused;
            }
            parent = node.id;
        }
    }
}

fn inside_file(file: &[u8]) -> Refusal {
    Refusal::new(
        RefuseCode::InvalidName,
        format!(
            "it lies inside {:?}, which this offer sends as a file",
            String::from_utf8_lossy(file)
        ),
    )
}

fn holds_others() -> Refusal {
    Refusal::new(
        RefuseCode::InvalidName,
        "offered as a file, but earlier entries of this offer lie inside it",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(tree: &mut OfferTree<'_>, name: &'static [u8], kind: EntryKind) -> String {
        tree.add(name, kind).expect_err("refused").reason
    }

    #[test]
    fn a_tree_passes_and_only_the_later_of_two_clashing_entries_is_refused() {
        let mut tree = OfferTree::default();
        for (name, kind) in [(&b"d"[..], EntryKind::Dir), (b"d/f", EntryKind::File)] {
            tree.add(name, kind).expect("a tree");
        }
        tree.add(b"x/y/z", EntryKind::File).expect("parents need no entry of their own");
        tree.add(b"x/y", EntryKind::Dir).expect("a parent offered after its contents");
        assert_eq!(reason(&mut tree, b"d/f", EntryKind::File), "the offer names it twice");
        assert!(reason(&mut tree, b"d/f/g", EntryKind::File).contains("inside \"d/f\""));
        assert!(reason(&mut tree, b"x", EntryKind::File).contains("earlier entries"));
        tree.add(b"d/g", EntryKind::File).expect("a refused entry does not block others");
        tree.refused(b"d/g");
        tree.add(b"d/g/h", EntryKind::File).expect("below a file refused on disk: the disk says");
    }
}
