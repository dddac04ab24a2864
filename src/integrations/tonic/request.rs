//! [`RequestExt`]: a call's context on a `tonic::Request`.

use crate::Context;

/// A context on a [`tonic::Request`]: the one a server handler runs under,
/// or the one an outgoing call should carry.
///
/// This trait is sealed: it is implemented for `tonic::Request` only.
///
/// ```
/// use std::time::Duration;
/// use tokio_ctx::tonic::RequestExt;
/// use tokio_ctx::Context;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let (ctx, _cancel) = Context::background().child_with_timeout(Duration::from_secs(1));
/// let mut request = tonic::Request::new("ping");
/// request.set_context(&ctx);
/// assert_eq!(request.context().remaining(), Some(Duration::from_secs(1)));
/// # }
/// ```
pub trait RequestExt: sealed::Sealed {
    /// The request's context: on a server behind
    /// [`RequestContextLayer`](super::RequestContextLayer), the call's; on
    /// an outgoing request, the one [set](Self::set_context) on it; else
    /// [`Context::current`].
    ///
    /// ```
    /// use tokio_ctx::tonic::RequestExt;
    ///
    /// async fn handler(request: tonic::Request<String>) -> Result<tonic::Response<String>, tonic::Status> {
    ///     let ctx = request.context();
    ///     ctx.check()?; // DEADLINE_EXCEEDED or CANCELLED if it ended
    ///     Ok(tonic::Response::new(format!("{:?} left", ctx.remaining())))
    /// }
    /// # drop(handler);
    /// ```
    fn context(&self) -> Context;

    /// Makes an outgoing call carry `ctx`'s budget (through
    /// [`PropagateBudgetLayer`](super::PropagateBudgetLayer)) instead of
    /// the context current when the call is made.
    ///
    /// ```
    /// use tokio_ctx::tonic::RequestExt;
    /// use tokio_ctx::Context;
    ///
    /// let (ctx, _cancel) = Context::background().named("batch").child();
    /// let mut request = tonic::Request::new(());
    /// request.set_context(&ctx);
    /// assert!(!request.context().is_done());
    /// ```
    fn set_context(&mut self, ctx: &Context);
}

impl<T> RequestExt for tonic::Request<T> {
    fn context(&self) -> Context {
        self.extensions()
            .get::<Context>()
            .cloned()
            .unwrap_or_else(Context::current)
    }

    fn set_context(&mut self, ctx: &Context) {
        self.extensions_mut().insert(ctx.clone());
    }
}

mod sealed {
    pub trait Sealed {}

    impl<T> Sealed for tonic::Request<T> {}
}
