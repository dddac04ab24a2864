//! Typed values carried by a context, looked up by type, nearest first.

use std::any::Any;
use std::sync::Arc;

/// One value in a chain of values; `T` is the value's own type until the
/// node is stored, then `dyn Any`.
pub(crate) struct ValueNode<T: ?Sized> {
    parent: Option<Values>,
    value: T,
}

/// A shared chain of values.
pub(crate) type Values = Arc<ValueNode<dyn Any + Send + Sync>>;

/// Puts `value` in front of `parent`.
pub(crate) fn push<T: Send + Sync + 'static>(parent: Option<&Values>, value: T) -> Values {
    Arc::new(ValueNode {
        parent: parent.cloned(),
        value,
    })
}

/// The nearest value of type `T`.
pub(crate) fn find<T: 'static>(mut node: &Values) -> Option<&T> {
    loop {
        if let Some(value) = node.value.downcast_ref::<T>() {
            return Some(value);
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
