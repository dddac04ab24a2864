//! A minimal slab: stable keys, O(1) insert and remove, no allocation until
//! the second value. The wait lists of the core are built on it; most hold
//! one waiter at a time, which then lives inline.

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
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            inline: None,
            slots: Vec::new(),
            next_vacant: usize::MAX,
            len: 0,
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
        Some(value)
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
        let mut rest: Vec<_> = slab.into_values().collect();
        rest.sort_unstable();
        assert_eq!(rest, ["a", "c", "d"]);
    }

    #[test]
    fn out_of_range_keys_are_ignored() {
        let mut slab: Slab<u8> = Slab::default();
        assert_eq!(slab.remove(7), None);
        assert!(slab.get_mut(7).is_none());
    }
}
