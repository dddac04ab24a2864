//! Fan-out over a fixed set of closures of different types: the engine
//! behind [`race!`](crate::race), [`select_first!`](crate::select_first),
//! [`join!`](crate::join) and [`try_join!`](crate::try_join).
//!
//! Closures of different types cannot share a list, and boxing each one
//! costs an allocation and a virtual call per poll. Instead, each arity has
//! an enum future (`Branch3<A, B, C>`) with one variant per closure's
//! future, whose output is an enum (`Out3<A, B, C>`) with one variant per
//! output. A tuple of closures starts one branch per closure, in place
//! ([`Fixed`]: a list of [`Step`]s of the enum's type, nothing allocated),
//! and the combinators of the list forms run them, so each branch runs
//! under its own child of the context, with the same causes ("lost the
//! race", "a sibling failed"), ordering and cancel safety as `race`,
//! `select_first`, `join_all` and `try_join_all`, and the fairness of their
//! small sets: every branch polled on every poll, in input order. Only the
//! outputs are put back together:
//! [`Uniform`] unwraps outputs that share a type (race, select first),
//! [`Transposed`] turns a branch's `Result` inside out so that the
//! `try_join_all` engine sees a failure, and [`Collect`] rebuilds the tuple
//! of outputs from the input-ordered list.
//!
//! Everything here is public only for the macros' expansions.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::branches::{self, BranchSet};
use super::fixed::{Cons, End, Fixed};
use super::join::{Join, TryJoin};
use super::step::Step;
use super::{JoinAll, Race, SelectFirst, TryJoinAll};
use crate::context::Context;
use crate::named::Named;

/// What the macros take as their first argument: a context, or a
/// [`Named`] one, whose name the branches' children get with their index.
pub trait Parent {
    /// The context to derive the branches from, and their name if any.
    fn fanout_parent(&self) -> (&Context, Option<&str>);
}

impl Parent for Context {
    fn fanout_parent(&self) -> (&Context, Option<&str>) {
        (self, None)
    }
}

impl Parent for Named<'_> {
    fn fanout_parent(&self) -> (&Context, Option<&str>) {
        (self.parent(), Some(self.name()))
    }
}

impl<P: Parent + ?Sized> Parent for &P {
    fn fanout_parent(&self) -> (&Context, Option<&str>) {
        (**self).fanout_parent()
    }
}

/// A tuple of closures `FnOnce(Context) -> impl Future`.
pub trait Fanout {
    /// The future of one branch: an enum of the closures' futures.
    type Branch: Future;

    /// The branches in place, each a `W`.
    type Set<W: Future>: BranchSet<Branch = W>;

    /// Starts one branch per closure, in order, each under its own child of
    /// `parent`, as `W` (the branch future or a wrapper of it).
    fn start<W>(
        self,
        parent: &Context,
        name: Option<&str>,
        location: &'static Location<'static>,
    ) -> Self::Set<W>
    where
        W: From<Self::Branch> + Future;
}

/// An enum of outputs that all have one type: unwraps it.
pub trait IntoInner {
    /// The one type of every output.
    type Inner;
    /// The output, whichever branch gave it.
    fn into_inner(self) -> Self::Inner;
}

/// An enum of `Result`s with one error type: a `Result` of the enum of
/// values.
pub trait Transpose {
    /// The enum of the values.
    type Ok;
    /// The one error type.
    type Err;
    /// The value as the enum of values, or the error.
    fn transpose(self) -> Result<Self::Ok, Self::Err>;
}

/// An enum of outputs, gathered in input order: the tuple of outputs.
pub trait Collect: Sized {
    /// The outputs, in input order.
    type Tuple;
    /// Takes the list that the joins gather, one output per branch in input
    /// order, apart.
    fn collect(outs: Vec<Self>) -> Self::Tuple;
}

pin_project! {
    /// A branch whose outputs all have one type, giving that type.
    #[derive(Debug)]
    pub struct Uniform<B> {
        #[pin]
        branch: B,
    }
}

impl<B> From<B> for Uniform<B> {
    fn from(branch: B) -> Self {
        Uniform { branch }
    }
}

impl<B> Future for Uniform<B>
where
    B: Future,
    B::Output: IntoInner,
{
    type Output = <B::Output as IntoInner>::Inner;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.project().branch.poll(cx).map(IntoInner::into_inner)
    }
}

pin_project! {
    /// A branch of `Result`s with one error type, giving a `Result`.
    #[derive(Debug)]
    pub struct Transposed<B> {
        #[pin]
        branch: B,
    }
}

impl<B> From<B> for Transposed<B> {
    fn from(branch: B) -> Self {
        Transposed { branch }
    }
}

impl<B> Future for Transposed<B>
where
    B: Future,
    B::Output: Transpose,
{
    type Output = Result<<B::Output as Transpose>::Ok, <B::Output as Transpose>::Err>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.project().branch.poll(cx).map(Transpose::transpose)
    }
}

/// Gives a closure the signature the macros need, so that its argument's
/// type is inferred as [`Context`] without an annotation.
pub fn branch<M, F>(f: M) -> M
where
    M: FnOnce(Context) -> F,
    F: Future,
{
    f
}

/// The race of [`race!`](crate::race).
pub type FanoutRace<T> =
    Race<Uniform<<T as Fanout>::Branch>, <T as Fanout>::Set<Uniform<<T as Fanout>::Branch>>>;

/// [`race!`](crate::race).
#[track_caller]
pub fn race<P, T>(parent: &P, fns: T) -> FanoutRace<T>
where
    P: Parent + ?Sized,
    T: Fanout,
    <T::Branch as Future>::Output: IntoInner,
{
    let (parent, name) = parent.fanout_parent();
    Race::from_set(fns.start(parent, name, Location::caller()), parent.clone())
}

/// The selection of [`select_first!`](crate::select_first).
pub type FanoutSelectFirst<T, E> = SelectFirst<
    Uniform<<T as Fanout>::Branch>,
    E,
    <T as Fanout>::Set<Uniform<<T as Fanout>::Branch>>,
>;

/// [`select_first!`](crate::select_first).
#[track_caller]
pub fn select_first<P, T, V, E>(parent: &P, fns: T) -> FanoutSelectFirst<T, E>
where
    P: Parent + ?Sized,
    T: Fanout,
    <T::Branch as Future>::Output: IntoInner<Inner = Result<V, E>>,
{
    let (parent, name) = parent.fanout_parent();
    SelectFirst::from_set(fns.start(parent, name, Location::caller()), parent.clone())
}

/// [`join!`](crate::join).
#[track_caller]
pub fn join<P, T>(parent: &P, fns: T) -> Join<T::Branch, T::Set<T::Branch>>
where
    P: Parent + ?Sized,
    T: Fanout,
    <T::Branch as Future>::Output: Collect,
{
    let (parent, name) = parent.fanout_parent();
    let branches = fns.start(parent, name, Location::caller());
    Join::new(JoinAll::from_set(branches, parent.clone()))
}

/// [`try_join!`](crate::try_join).
#[track_caller]
pub fn try_join<P, T, O>(parent: &P, fns: T) -> TryJoin<T::Branch, O, T::Set<Transposed<T::Branch>>>
where
    P: Parent + ?Sized,
    T: Fanout,
    <T::Branch as Future>::Output: Transpose<Ok = O>,
    O: Collect,
{
    let (parent, name) = parent.fanout_parent();
    let branches = fns.start(parent, name, Location::caller());
    TryJoin::new(TryJoinAll::from_set(branches, parent.clone()))
}

/// The type `$t`, once per `$_`: repeats a type in a macro repetition.
macro_rules! same_type {
    ($_:ident, $t:ty) => {
        $t
    };
}

/// The list of `W` steps, one per closure: `Cons<W, Cons<W, End<W>>>`.
macro_rules! steps_type {
    ($W:ty;) => { End<$W> };
    ($W:ty; $m:ident $($rest:ident)*) => { Cons<$W, steps_type!($W; $($rest)*)> };
}

/// The list of steps itself: closure `$m` (at `$at`) makes variant `$V` of
/// `$Branch`, as a `W`, under the branch's child. Evaluated in input order.
macro_rules! steps {
    ($Branch:ident, $parent:ident, $name:ident, $location:ident;) => { End::new() };
    (
        $Branch:ident, $parent:ident, $name:ident, $location:ident;
        $V:ident $m:ident $at:literal $($rest:tt)*
    ) => {
        Cons::new(
            Step::new(branches::child($parent, $name, $at, $location), |ctx| {
                W::from($Branch::$V { fut: $m(ctx) })
            }),
            steps!($Branch, $parent, $name, $location; $($rest)*),
        )
    };
}

/// The branch enum, the output enum and the tuple impls of one arity:
/// `$V` names a variant, `$M` a closure's type, `$F` its future's type (and
/// an output's, in the output enum), `$m` the closure, `$at` its position.
macro_rules! fanout {
    (
        $Branch:ident, $Proj:ident, $Out:ident, $n:literal;
        $($V:ident $M:ident $F:ident $m:ident $at:literal),+
    ) => {
        pin_project! {
            /// One branch of a fan-out of this many closures.
            #[project = $Proj]
            #[derive(Debug)]
            pub enum $Branch<$($F),+> {
                $(
                    #[allow(missing_docs)]
                    $V { #[pin] fut: $F },
                )+
            }
        }

        impl<$($F: Future),+> Future for $Branch<$($F),+> {
            type Output = $Out<$($F::Output),+>;

            fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
                match self.project() {
                    $($Proj::$V { fut } => fut.poll(cx).map($Out::$V),)+
                }
            }
        }

        /// The output of one branch of a fan-out of this many closures.
        #[derive(Debug)]
        pub enum $Out<$($F),+> {
            $(
                #[allow(missing_docs)]
                $V($F),
            )+
        }

        impl<T> IntoInner for $Out<$(same_type!($F, T)),+> {
            type Inner = T;

            fn into_inner(self) -> T {
                match self {
                    $($Out::$V(out) => out,)+
                }
            }
        }

        impl<E, $($F),+> Transpose for $Out<$(Result<$F, E>),+> {
            type Ok = $Out<$($F),+>;
            type Err = E;

            fn transpose(self) -> Result<Self::Ok, E> {
                match self {
                    $($Out::$V(result) => result.map($Out::$V),)+
                }
            }
        }

        impl<$($F),+> Collect for $Out<$($F),+> {
            type Tuple = ($($F,)+);

            #[allow(unreachable_patterns)]
            fn collect(outs: Vec<Self>) -> Self::Tuple {
                let mut outs = outs.into_iter();
                ($(
                    match outs.next() {
                        Some($Out::$V(out)) => out,
                        // Each branch fills the slot at its own index with
                        // its own variant: the joins only complete once all
                        // are filled.
                        _ => unreachable!(concat!("no output for branch ", stringify!($V))),
                    },
                )+)
            }
        }

        impl<$($M, $F),+> Fanout for ($($M,)+)
        where
            $($M: FnOnce(Context) -> $F, $F: Future,)+
        {
            type Branch = $Branch<$($F),+>;
            type Set<W: Future> = Fixed<steps_type!(W; $($m)+)>;

            fn start<W>(
                self,
                parent: &Context,
                name: Option<&str>,
                location: &'static Location<'static>,
            ) -> Self::Set<W>
            where
                W: From<Self::Branch> + Future,
            {
                let ($($m,)+) = self;
                // If a closure panics, the steps already made are dropped
                // on the way out, which cancels their children.
                Fixed::new($n, steps!($Branch, parent, name, location; $($V $m $at)+))
            }
        }
    };
}

fanout!(
    Branch1, Branch1Proj, Out1, 1;
    A MA FA a 0
);
fanout!(
    Branch2, Branch2Proj, Out2, 2;
    A MA FA a 0, B MB FB b 1
);
fanout!(
    Branch3, Branch3Proj, Out3, 3;
    A MA FA a 0, B MB FB b 1, C MC FC c 2
);
fanout!(
    Branch4, Branch4Proj, Out4, 4;
    A MA FA a 0, B MB FB b 1, C MC FC c 2, D MD FD d 3
);
fanout!(
    Branch5, Branch5Proj, Out5, 5;
    A MA FA a 0, B MB FB b 1, C MC FC c 2, D MD FD d 3, E ME FE e 4
);
fanout!(
    Branch6, Branch6Proj, Out6, 6;
    A MA FA a 0, B MB FB b 1, C MC FC c 2, D MD FD d 3, E ME FE e 4, F MF FF f 5
);
fanout!(
    Branch7, Branch7Proj, Out7, 7;
    A MA FA a 0, B MB FB b 1, C MC FC c 2, D MD FD d 3, E ME FE e 4, F MF FF f 5, G MG FG g 6
);
fanout!(
    Branch8, Branch8Proj, Out8, 8;
    A MA FA a 0, B MB FB b 1, C MC FC c 2, D MD FD d 3, E ME FE e 4, F MF FF f 5, G MG FG g 6,
    H MH FH h 7
);
fanout!(
    Branch9, Branch9Proj, Out9, 9;
    A MA FA a 0, B MB FB b 1, C MC FC c 2, D MD FD d 3, E ME FE e 4, F MF FF f 5, G MG FG g 6,
    H MH FH h 7, I MI FI i 8
);
fanout!(
    Branch10, Branch10Proj, Out10, 10;
    A MA FA a 0, B MB FB b 1, C MC FC c 2, D MD FD d 3, E ME FE e 4, F MF FF f 5, G MG FG g 6,
    H MH FH h 7, I MI FI i 8, J MJ FJ j 9
);
fanout!(
    Branch11, Branch11Proj, Out11, 11;
    A MA FA a 0, B MB FB b 1, C MC FC c 2, D MD FD d 3, E ME FE e 4, F MF FF f 5, G MG FG g 6,
    H MH FH h 7, I MI FI i 8, J MJ FJ j 9, K MK FK k 10
);
fanout!(
    Branch12, Branch12Proj, Out12, 12;
    A MA FA a 0, B MB FB b 1, C MC FC c 2, D MD FD d 3, E ME FE e 4, F MF FF f 5, G MG FG g 6,
    H MH FH h 7, I MI FI i 8, J MJ FJ j 9, K MK FK k 10, L ML FL l 11
);
