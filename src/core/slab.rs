//! A minimal slab: stable keys, O(1) insert and remove, no allocation until
//! the second value. The wait lists of the core are built on it; most hold
//! one waiter at a time, which then lives inline.
//!
//! It gives memory back after a burst. A long-lived root sees every waiter
//! of the contexts below it that lost their handles, so a burst of a
//! hundred thousand waiters must not leave megabytes behind once they are
//! gone. The slots are freed as soon as none is full, and when fewer than a
//! quarter of them are, the vacant tail is cut off and the vector shrunk, in
//! a pass over the slots that runs only after as many removals as half the
//! slots (so removal stays O(1) amortized). Keys are stable, so a full slot
//! near the end keeps the slots before it; the pass rebuilds the vacant list
//! lowest first, so that new values fill the front and the tail can empty.

use std::mem;

#[derive(Debug)]
enum Slot<T> {
    Full(T),
    /// A vacant slot; the key of the next vacant one (`usize::MAX` ends the list).
    Vacant(usize),
}

/// Values addressed by the key returned at insertion: key 0 is the inline
/// slot, key `k > 0` is `slots[k - 1]`.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    inline: Option<T>,
    slots: Vec<Slot<T>>,
    next_vacant: usize,
    len: usize,
    /// Removals from `slots` since they were last compacted.
    removed: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            inline: None,
            slots: Vec::new(),
            next_vacant: usize::MAX,
            len: 0,
            removed: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Stores `value` and returns its key.
    pub(crate) fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        if self.inline.is_none() {
            self.inline = Some(value);
            return 0;
        }
        if self.next_vacant == usize::MAX {
            self.slots.push(Slot::Full(value));
            return self.slots.len();
        }
        let key = self.next_vacant;
        match mem::replace(&mut self.slots[key], Slot::Full(value)) {
            Slot::Vacant(next) => self.next_vacant = next,
            // The vacant list only ever names vacant slots.
            Slot::Full(_) => unreachable!("slab vacant list names a full slot"),
        }
        key + 1
    }

    /// Removes and returns the value under `key`, if there is one.
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let Some(index) = key.checked_sub(1) else {
            let value = self.inline.take();
            self.len -= usize::from(value.is_some());
            return value;
        };
        let slot = self.slots.get_mut(index)?;
        if matches!(slot, Slot::Vacant(_)) {
            return None;
        }
        let Slot::Full(value) = mem::replace(slot, Slot::Vacant(self.next_vacant)) else {
            return None;
        };
        self.next_vacant = index;
        self.len -= 1;
        self.removed += 1;
        self.give_back();
        Some(value)
    }

    /// Frees the slots once none is full, or compacts them once few are
    /// (see the module documentation). Only vacant slots are dropped.
    fn give_back(&mut self) {
        let full = self.len - usize::from(self.inline.is_some());
        if full == 0 {
            *self = Slab {
                inline: self.inline.take(),
                len: self.len,
                ..Slab::default()
            };
        } else if full * 4 <= self.slots.len() && self.removed * 2 >= self.slots.len() {
            self.compact();
        }
    }

    /// Cuts off the vacant tail, shrinks the vector to what is left, and
    /// rebuilds the vacant list lowest first.
    fn compact(&mut self) {
        while matches!(self.slots.last(), Some(Slot::Vacant(_))) {
            self.slots.pop();
        }
        self.slots.shrink_to_fit();
        self.next_vacant = usize::MAX;
        for (index, slot) in self.slots.iter_mut().enumerate().rev() {
            if let Slot::Vacant(next) = slot {
                *next = self.next_vacant;
                self.next_vacant = index;
            }
        }
        self.removed = 0;
    }

    /// The value under `key`, if there is one.
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        let Some(index) = key.checked_sub(1) else {
            return self.inline.as_mut();
        };
        match self.slots.get_mut(index)? {
            Slot::Full(value) => Some(value),
            Slot::Vacant(_) => None,
        }
    }

    /// How many values are stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// How many slots the vector has room for, beyond the inline one.
    #[cfg(all(test, not(tokio_ctx_loom)))]
    fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// Every stored value with its key, in no particular order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        let rest = self
            .slots
            .iter_mut()
            .enumerate()
            .filter_map(|(index, slot)| match slot {
                Slot::Full(value) => Some((index + 1, value)),
                Slot::Vacant(_) => None,
            });
        self.inline.iter_mut().map(|value| (0, value)).chain(rest)
    }

    /// Every stored value, emptying the slab.
    pub(crate) fn into_values(self) -> impl Iterator<Item = T> {
        let rest = self.slots.into_iter().filter_map(|slot| match slot {
            Slot::Full(value) => Some(value),
            Slot::Vacant(_) => None,
        });
        self.inline.into_iter().chain(rest)
    }
}

#[cfg(all(test, not(tokio_ctx_loom)))]
mod tests {
    use super::Slab;

    #[test]
    fn keys_stay_stable_and_vacant_slots_are_reused() {
        let mut slab = Slab::default();
        let a = slab.insert("a");
        let b = slab.insert("b");
        let c = slab.insert("c");
        assert_eq!(slab.remove(b), Some("b"));
        assert_eq!(slab.remove(b), None, "a removed key stays empty");
        assert_eq!(slab.get_mut(a), Some(&mut "a"));
        assert_eq!(slab.get_mut(c), Some(&mut "c"));
        let d = slab.insert("d");
        assert_eq!(d, b, "the vacant slot is reused before the vector grows");
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.insert("a"), a, "the inline slot is reused first");
        assert_eq!(slab.len(), 3);
        let mut keyed: Vec<_> = slab.iter_mut().map(|(k, v)| (k, *v)).collect();
        keyed.sort_unstable();
        assert_eq!(
            keyed,
            [(a, "a"), (b, "d"), (c, "c")],
            "each value under its key"
        );
        let mut rest: Vec<_> = slab.into_values().collect();
        rest.sort_unstable();
        assert_eq!(rest, ["a", "c", "d"]);
    }

    #[test]
    fn a_burst_gives_its_slots_back_once_it_is_gone() {
        let mut slab = Slab::default();
        let stays = slab.insert(0);
        let burst: Vec<_> = (1..=1_000).map(|i| slab.insert(i)).collect();
        assert!(slab.capacity() >= 1_000);
        for key in burst {
            assert!(slab.remove(key).is_some());
        }
        assert_eq!(slab.capacity(), 0, "no full slot left: the vector is freed");
        assert_eq!(slab.remove(stays), Some(0));
        assert_eq!(slab.len(), 0);
    }

    #[test]
    fn a_burst_that_leaves_a_few_behind_shrinks_to_them() {
        let mut slab = Slab::default();
        let keys: Vec<_> = (0..1_000).map(|i| slab.insert(i)).collect();
        // Keep a few near the front; remove everything else, last first.
        for &key in keys[10..].iter().rev() {
            assert!(slab.remove(key).is_some());
        }
        assert!(slab.capacity() < 100, "capacity {}", slab.capacity());
        for (i, &key) in keys[..10].iter().enumerate() {
            assert_eq!(
                slab.get_mut(key).copied(),
                Some(i),
                "kept values keep their keys"
            );
        }
        // New values fill the front first.
        let reused = slab.insert(7);
        assert!(reused <= 10, "{reused}");
    }

    #[test]
    fn compaction_keeps_the_vacant_list_sound() {
        let mut slab = Slab::default();
        let keys: Vec<_> = (0..64).map(|i| slab.insert(i)).collect();
        // Every other one, then all but the last: compactions happen with
        // vacant slots between full ones and with a full slot at the end.
        for &key in keys.iter().step_by(2) {
            slab.remove(key);
        }
        for &key in &keys[..63] {
            slab.remove(key);
        }
        assert_eq!(slab.len(), 1);
        let more: Vec<_> = (0..100).map(|i| slab.insert(1_000 + i)).collect();
        let mut unique = more.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 100, "no key handed out twice");
        assert_eq!(slab.get_mut(keys[63]), Some(&mut 63));
        for (i, key) in more.into_iter().enumerate() {
            assert_eq!(slab.remove(key), Some(1_000 + i));
        }
        assert_eq!(slab.remove(keys[63]), Some(63));
        assert_eq!(slab.len(), 0);
    }

    #[test]
    fn out_of_range_keys_are_ignored() {
        let mut slab: Slab<u8> = Slab::default();
        assert_eq!(slab.remove(7), None);
        assert!(slab.get_mut(7).is_none());
    }
}
