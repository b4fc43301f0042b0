//! What an offer says about itself, found before anything touches the disk: names offered
//! twice, and entries inside a file entry of the same offer (`a` and `a/b`). The valid names
//! are sorted once by component, which puts each such pair side by side: 4 bytes an entry and
//! `n log n` comparisons, whatever the depth.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use crate::protocol::{Entry, EntryKind, names};

/// The clashes of one offer, by entry index. Of two clashing entries the later one is the
/// one refused, whatever becomes of the earlier: the rule is the offer's, not the disk's.
#[derive(Debug, Default)]
pub(super) struct Clashes {
    /// Entries whose name an earlier entry has.
    twice: HashSet<u32>,
    /// Entries inside an earlier file entry, with the earliest such file.
    inside: HashMap<u32, u32>,
    /// File entries that earlier entries lie inside, with the first of those.
    holds: HashMap<u32, u32>,
}

/// A file entry whose descendants the sorted walk is among.
struct Open {
    index: u32,
    /// The earliest index of this file and the files it lies inside.
    earliest_file: u32,
    /// The earliest index among the entries seen inside it so far.
    earliest_inside: u32,
}

impl Clashes {
    /// Finds the clashes among `entries` whose names are valid (the others are refused for
    /// their name anyway). The walk over the sorted names keeps the file entries the current
    /// name lies inside on a stack, so each entry costs O(1) besides the sort.
    pub fn find(entries: &[Entry]) -> Clashes {
        let name = |i: u32| entries[i as usize].name.as_slice();
        let mut order: Vec<u32> =
            (0..entries.len() as u32).filter(|&i| names::components(name(i)).is_ok()).collect();
        order.sort_unstable_by(|&a, &b| by_component(name(a), name(b)).then(a.cmp(&b)));
        let mut clashes = Clashes::default();
        let mut open: Vec<Open> = Vec::new();
        for (at, &index) in order.iter().enumerate() {
            if at > 0 && name(order[at - 1]) == name(index) {
                clashes.twice.insert(index);
                continue;
            }
            while let Some(top) = open.last() {
                if is_inside(name(index), name(top.index)) {
                    break;
                }
                clashes.close(&mut open);
            }
            if let Some(top) = open.last_mut() {
                top.earliest_inside = top.earliest_inside.min(index);
                if top.earliest_file < index {
                    clashes.inside.insert(index, top.earliest_file);
                }
            }
            if entries[index as usize].kind == EntryKind::File {
                let earliest_file = open.last().map_or(index, |top| top.earliest_file.min(index));
                open.push(Open { index, earliest_file, earliest_inside: u32::MAX });
            }
        }
        while !open.is_empty() {
            clashes.close(&mut open);
        }
        clashes
    }

    /// Ends the walk below the innermost open file: what lay inside it lies inside the file
    /// around it too.
    fn close(&mut self, open: &mut Vec<Open>) {
        let Some(done) = open.pop() else { return };
        if done.earliest_inside < done.index {
            self.holds.insert(done.index, done.earliest_inside);
        }
        if let Some(outer) = open.last_mut() {
            outer.earliest_inside = outer.earliest_inside.min(done.earliest_inside);
        }
    }

    /// Whether an earlier entry has the same name.
    pub fn twice(&self, index: usize) -> bool {
        self.twice.contains(&(index as u32))
    }

    /// The earliest earlier file entry this entry lies inside, if any.
    pub fn inside(&self, index: usize) -> Option<usize> {
        self.inside.get(&(index as u32)).map(|&f| f as usize)
    }

    /// The first earlier entry that lies inside this file entry, if any.
    pub fn holds(&self, index: usize) -> Option<usize> {
        self.holds.get(&(index as u32)).map(|&e| e as usize)
    }
}

/// Byte order with `/` before every other byte, so that a name's descendants come right
/// after it (`a`, `a/b`, `a/c`, `a!`), never separated by a sibling.
fn by_component(a: &[u8], b: &[u8]) -> Ordering {
    let key = |c: &u8| if *c == b'/' { 0 } else { *c };
    a.iter().map(key).cmp(b.iter().map(key))
}

/// Whether `name` lies below `dir`.
fn is_inside(name: &[u8], dir: &[u8]) -> bool {
    name.len() > dir.len() && name.starts_with(dir) && name[dir.len()] == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: EntryKind) -> Entry {
        Entry {
            kind,
            name: name.as_bytes().to_vec(),
            size: None,
            mode: 0o644,
            mtime_sec: 0,
            mtime_nsec: 0,
        }
    }

    #[test]
    fn only_the_later_of_two_clashing_entries_is_named() {
        use EntryKind::{Dir, File};
        let offer = [
            entry("d", Dir),         // 0
            entry("d/f", File),      // 1
            entry("x/y/z", File),    // 2
            entry("x/y", Dir),       // 3: a parent offered after its contents is fine
            entry("d/f", File),      // 4: twice
            entry("d/f/g", File),    // 5: inside the file d/f
            entry("x", File),        // 6: x/y/z and x/y lie inside it
            entry("d/f!", File),     // 7: a sibling that sorts between d/f's descendants
            entry("../d/f/h", File), // 8: an invalid name clashes with nothing
            entry("p/q", File),      // 9
            entry("p/q/r", File),    // 10: inside p/q
            entry("p", File),        // 11: p/q and p/q/r lie inside it
        ];
        let c = Clashes::find(&offer);
        assert!((0..offer.len()).filter(|&i| c.twice(i)).eq([4]));
        let inside: Vec<_> = (0..offer.len()).filter_map(|i| Some((i, c.inside(i)?))).collect();
        assert_eq!(inside, [(5, 1), (10, 9)]);
        let holds: Vec<_> = (0..offer.len()).filter_map(|i| Some((i, c.holds(i)?))).collect();
        assert_eq!(holds, [(6, 2), (11, 9)]);
    }

    #[test]
    fn an_entry_inside_an_earlier_file_is_refused_even_below_a_later_one() {
        use EntryKind::File;
        let offer = [entry("a", File), entry("a/b/c", File), entry("a/b", File)];
        let c = Clashes::find(&offer);
        assert_eq!((c.inside(1), c.inside(2)), (Some(0), Some(0)));
        assert_eq!(c.holds(2), Some(1), "a/b/c came before a/b: a/b is refused too");
    }

    #[test]
    fn a_name_lies_inside_its_ancestors_only() {
        assert!(is_inside(b"a/b", b"a") && is_inside(b"a/b/c", b"a/b"));
        // Not itself (a caller that never asks this today must still get an answer, not a
        // panic), not a sibling sharing a prefix, not its parent.
        assert!(!is_inside(b"a", b"a"));
        assert!(!is_inside(b"ab", b"a") && !is_inside(b"a!b", b"a"));
        assert!(!is_inside(b"a", b"a/b"));
    }
}
