//! Typed values carried by a context, looked up by type, nearest first.

use std::any::{Any, TypeId};
use std::sync::Arc;

/// One value in a chain of values; `T` is the value's own type until the
/// node is stored, then `dyn Any`.
pub(crate) struct ValueNode<T: ?Sized> {
    parent: Option<Values>,
    /// The value's type, stored so that a lookup compares plain ids instead
    /// of asking each value through its vtable.
    type_id: TypeId,
    value: T,
}

/// A shared chain of values.
pub(crate) type Values = Arc<ValueNode<dyn Any + Send + Sync>>;

/// Puts `value` in front of `parent`.
pub(crate) fn push<T: Send + Sync + 'static>(parent: Option<&Values>, value: T) -> Values {
    Arc::new(ValueNode {
        parent: parent.cloned(),
        type_id: TypeId::of::<T>(),
        value,
    })
}

/// The nearest value of type `T`.
#[inline]
pub(crate) fn find<T: 'static>(mut node: &Values) -> Option<&T> {
    let wanted = TypeId::of::<T>();
    loop {
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
        // Release the chain that only we kept alive one node at a time instead
        // of through nested drops, so that a deep chain fits in any stack.
        let mut next = self.parent.take();
        while let Some(mut node) = next {
            next = Arc::get_mut(&mut node).and_then(|node| node.parent.take());
        }
    }
}
