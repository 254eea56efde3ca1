//! Allocation of service and backend ids.

use std::collections::BTreeSet;

/// Ids in `first..end`. Hands out the next free id after the last one given
/// (like PIDs), so a freed id is reused as late as possible.
#[derive(Clone, Debug)]
pub(crate) struct IdAllocator {
    first: u32,
    end: u32,
    next: u32,
    used: BTreeSet<u32>,
}

impl IdAllocator {
    pub(crate) fn new(first: u32, end: u32) -> Self {
        Self {
            first,
            end,
            next: first,
            used: BTreeSet::new(),
        }
    }

    /// A free id, now taken; `None` when all are taken.
    pub(crate) fn allocate(&mut self) -> Option<u32> {
        let span = self.end - self.first;
        if self.used.len() as u32 >= span {
            return None;
        }
        let mut id = self.next;
        while self.used.contains(&id) {
            id = if id + 1 >= self.end {
                self.first
            } else {
                id + 1
            };
        }
        self.used.insert(id);
        self.next = if id + 1 >= self.end {
            self.first
        } else {
            id + 1
        };
        Some(id)
    }

    /// Marks `id` taken (adopting an id found in the maps). False if it is
    /// out of range or already taken.
    pub(crate) fn reserve(&mut self, id: u32) -> bool {
        (self.first..self.end).contains(&id) && self.used.insert(id)
    }

    pub(crate) fn release(&mut self, id: u32) {
        self.used.remove(&id);
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.end - self.first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_in_range_and_reuses_late() {
        let mut ids = IdAllocator::new(1, 4);
        assert_eq!(ids.allocate(), Some(1));
        assert_eq!(ids.allocate(), Some(2));
        ids.release(1);
        assert_eq!(ids.allocate(), Some(3));
        assert_eq!(ids.allocate(), Some(1), "wraps to the freed id");
        assert_eq!(ids.allocate(), None, "full");
        assert!(!ids.reserve(2), "taken");
        assert!(!ids.reserve(0), "out of range");
        ids.release(2);
        assert!(ids.reserve(2));
        assert_eq!(ids.capacity(), 3);
    }
}
