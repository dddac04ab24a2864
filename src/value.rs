//! Typed values carried by a context, looked up by type, nearest first.
//!
//! # Shape
//!
//! Values form a persistent chain: each `with_value` puts one node in front
//! of its parent's chain and shares the rest, so deriving costs one
//! allocation whatever the chain's length. A lookup walks toward the root
//! and stops at the first node of the wanted type.
//!
//! Walking one node at a time makes a lookup as slow as the chain is long,
//! and a request's chain grows with every middleware that adds a value:
//! 26 ns at 10 values, 3.9 µs at 1,000. So each node also names a farther
//! ancestor, its *jump target*, and keeps a one-word summary of the types
//! between the two. A lookup whose type is not in the summary jumps there;
//! otherwise it looks at the node itself and steps to the parent.
//!
//! # Invariants
//!
//! 1. A node's jump target is its parent, or the jump target of its
//!    parent's jump target when the two spans before it are equally long
//!    (skew-binary jump pointers). Either way it is an ancestor found in
//!    constant time at derivation, spans are 2^k - 1 nodes long, and any
//!    ancestor is reached in a number of jumps and steps logarithmic in the
//!    distance.
//! 2. Only a span of at least [`KEEP_SPAN`] nodes keeps a reference to its
//!    target (`skip`); a shorter one is walked, one parent at a time, both
//!    by a lookup and by a derivation that needs its target. Keeping the
//!    reference costs two atomic operations, which about a quarter of the
//!    nodes of a long chain pay, and a chain shorter than `KEEP_SPAN` none.
//! 3. `skipped` holds the type bit (see [`type_bit`]) of every node of the
//!    span: from this one, inclusive, up to the jump target, exclusive. A
//!    clear bit proves the type is not in the span, so jumping over it
//!    cannot pass the nearest value; a set bit may be another type's (64
//!    bits for any number of types), which costs a step, never a wrong
//!    answer.
//! 4. A kept jump target is a strict ancestor of the parent. Dropping a
//!    chain is a loop, never a recursion, so a chain of any length is
//!    released in a small stack.

use std::any::{Any, TypeId};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The shortest span whose node keeps a reference to its jump target
/// (invariant 2): spans are 1, 3, 7, 15... nodes long.
const KEEP_SPAN: usize = 7;

/// One value in a chain of values; `T` is the value's own type until the
/// node is stored, then `dyn Any`.
pub(crate) struct ValueNode<T: ?Sized> {
    parent: Option<Values>,
    /// The jump target, when the span is long enough to keep it
    /// (invariant 2).
    skip: Option<Values>,
    /// How many nodes a jump passes over, this one included (invariant 1).
    span: usize,
    /// The type bits of those nodes (invariant 3).
    skipped: u64,
    /// The value's type, stored so that a lookup compares plain ids instead
    /// of asking each value through its vtable.
    type_id: TypeId,
    value: T,
}

/// A shared chain of values.
pub(crate) type Values = Arc<ValueNode<dyn Any + Send + Sync>>;

impl<T: ?Sized> ValueNode<T> {
    /// The jump target: kept, or found by walking a short span.
    fn jump(&self) -> Option<&Values> {
        if let Some(skip) = &self.skip {
            return Some(skip);
        }
        let mut node = self.parent.as_ref()?;
        for _ in 1..self.span {
            node = node.parent.as_ref()?;
        }
        Some(node)
    }
}

/// One of 64 bits standing for a type in a node's summary.
///
/// `TypeId` is already a hash of the type; feeding it through a hasher
/// that keeps the word written reads that hash back without rehashing,
/// and compiles down to a constant for a lookup's type.
#[inline]
fn type_bit(id: TypeId) -> u64 {
    #[derive(Default)]
    struct Word(u64);

    impl Hasher for Word {
        fn finish(&self) -> u64 {
            self.0
        }

        fn write(&mut self, bytes: &[u8]) {
            // Not reached for a `TypeId` today, which writes one integer;
            // kept correct should that change.
            for &byte in bytes {
                self.0 = self.0.rotate_left(8) ^ u64::from(byte);
            }
        }

        fn write_u64(&mut self, word: u64) {
            self.0 ^= word;
        }
    }

    let mut hasher = Word::default();
    id.hash(&mut hasher);
    1 << (hasher.finish() % 64)
}

/// Puts `value` in front of `parent`.
pub(crate) fn push<T: Send + Sync + 'static>(parent: Option<&Values>, value: T) -> Values {
    let type_id = TypeId::of::<T>();
    let own = type_bit(type_id);
    // Invariant 1: two equal spans before us merge into one with us.
    let merged = parent.and_then(|parent| {
        let first = parent.jump()?;
        let second = first.jump()?;
        (parent.span == first.span).then(|| {
            let span = 1 + parent.span + first.span;
            let skip = (span >= KEEP_SPAN).then(|| Arc::clone(second));
            (skip, span, own | parent.skipped | first.skipped)
        })
    });
    let (skip, span, skipped) = merged.unwrap_or((None, 1, own));
    Arc::new(ValueNode {
        parent: parent.cloned(),
        skip,
        span,
        skipped,
        type_id,
        value,
    })
}

/// The nearest value of type `T`.
#[inline]
pub(crate) fn find<T: 'static>(mut node: &Values) -> Option<&T> {
    let wanted = TypeId::of::<T>();
    let bit = type_bit(wanted);
    loop {
        if node.skipped & bit == 0 {
            // Invariant 3: no `T` in this span. A short span is walked
            // (invariant 2): its nodes' own summaries still apply.
            node = node.skip.as_ref().or(node.parent.as_ref())?;
            continue;
        }
        if node.type_id == wanted {
            return node.value.downcast_ref::<T>();
        }
        node = node.parent.as_ref()?;
    }
}

/// How many values the chain holds.
pub(crate) fn count(mut node: &Values) -> usize {
    let mut n = 1;
    while let Some(parent) = &node.parent {
        n += 1;
        node = parent;
    }
    n
}

impl<T: ?Sized> Drop for ValueNode<T> {
    fn drop(&mut self) {
        // Invariant 4: release what only we kept alive one node at a time,
        // each emptied before it is dropped, so that no drop nests in
        // another. A kept jump target lies above the parent, which still
        // holds it while the skip is released: that release frees nothing.
        drop(self.skip.take());
        let mut next = self.parent.take();
        while let Some(mut node) = next {
            next = Arc::get_mut(&mut node).and_then(|node| {
                drop(node.skip.take());
                node.parent.take()
            });
        }
    }
}

#[cfg(all(test, not(tokio_ctx_loom)))]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Depth(usize);
    #[derive(Debug, PartialEq)]
    struct Marker(usize);

    /// The nearest `T`, one node at a time: what a lookup must agree with.
    fn walk<T: 'static>(mut node: &Values) -> Option<&T> {
        loop {
            if let Some(value) = node.value.downcast_ref::<T>() {
                return Some(value);
            }
            node = node.parent.as_ref()?;
        }
    }

    #[test]
    fn lookups_agree_with_a_plain_walk_at_every_depth() {
        // Markers at irregular depths, so that jumps start and end on every
        // kind of span.
        let mut chain = push(None, Depth(0));
        let mut chains = vec![Arc::clone(&chain)];
        for depth in 1..300 {
            chain = if depth % 7 == 3 || depth % 11 == 0 {
                push(Some(&chain), Marker(depth))
            } else {
                push(Some(&chain), Depth(depth))
            };
            chains.push(Arc::clone(&chain));
        }
        for (depth, chain) in chains.iter().enumerate() {
            assert_eq!(count(chain), depth + 1);
            assert_eq!(find::<Depth>(chain), walk::<Depth>(chain), "depth {depth}");
            assert_eq!(
                find::<Marker>(chain),
                walk::<Marker>(chain),
                "depth {depth}"
            );
            assert_eq!(find::<String>(chain), None);
        }
        assert_eq!(find::<Marker>(&chains[2]), None);
        assert_eq!(find::<Marker>(&chains[299]), Some(&Marker(297)));
    }

    /// The nodes a lookup of `T` visits, as `find` walks them.
    fn steps<T: 'static>(mut node: &Values) -> usize {
        let bit = type_bit(TypeId::of::<T>());
        let mut steps = 1;
        loop {
            let next = if node.skipped & bit == 0 {
                node.skip.as_ref().or(node.parent.as_ref())
            } else if node.type_id == TypeId::of::<T>() {
                return steps;
            } else {
                node.parent.as_ref()
            };
            match next {
                Some(next) => node = next,
                None => return steps,
            }
            steps += 1;
        }
    }

    #[test]
    fn a_value_far_up_is_found_in_few_steps() {
        let mut chain = push(None, Marker(0));
        for depth in 1..1_000 {
            chain = push(Some(&chain), Depth(depth));
        }
        assert_eq!(find::<Marker>(&chain), Some(&Marker(0)));
        // Found one node at a time, this would take 1,000 steps.
        let taken = steps::<Marker>(&chain);
        assert!(taken <= 40, "{taken} steps for 1,000 values");
        assert!(steps::<String>(&chain) <= 40);
    }

    #[test]
    fn only_long_spans_keep_a_reference() {
        let mut chain = push(None, Depth(0));
        let mut kept = 0;
        for depth in 1..1_000 {
            chain = push(Some(&chain), Depth(depth));
            assert!(chain.skip.is_none() || chain.span >= KEEP_SPAN);
            kept += usize::from(chain.skip.is_some());
        }
        // A quarter of a long chain, where every span of 3 or more would be
        // half of it.
        assert!(kept < 300, "{kept} of 1,000 nodes keep a jump target");
        let mut short = push(None, Depth(0));
        for depth in 1..KEEP_SPAN - 1 {
            short = push(Some(&short), Depth(depth));
            assert!(short.skip.is_none());
        }
    }

    #[test]
    fn a_long_chain_drops_on_a_small_stack() {
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| {
                let mut chain = push(None, Depth(0));
                for depth in 1..1_000_000 {
                    chain = push(Some(&chain), Depth(depth));
                }
                assert_eq!(find::<Depth>(&chain), Some(&Depth(999_999)));
                // A node in the middle, held past the leaf, keeps its
                // ancestors and their jump targets alive.
                let mut middle = &chain;
                while find::<Depth>(middle).map_or(0, |d| d.0) > 500_000 {
                    middle = middle
                        .skip
                        .as_ref()
                        .unwrap_or_else(|| middle.parent.as_ref().unwrap());
                }
                let middle = Arc::clone(middle);
                drop(chain);
                let at = find::<Depth>(&middle).unwrap().0;
                assert!(at <= 500_000);
                assert_eq!(count(&middle), at + 1);
                drop(middle);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
