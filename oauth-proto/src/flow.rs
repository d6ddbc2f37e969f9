//! Flows: how a request that needs the store is run without the engine touching the store.
//!
//! Every endpoint is written as straight-line code over a `Cx`: it calls `Cx::ask` when it needs
//! an [`Op`] answered and `Cx::effect` to record a write. A [`Flow`] runs that code; the first time
//! it reaches an unanswered op it stops and hands the op to the driver ([`Next::Op`]). The driver
//! answers ([`Waiting::answer`]) and steps again: the code re-runs from the top with the answers
//! recorded so far, replayed in order, until it finishes ([`Next::Done`]) with its output and effects.
//!
//! Replay keeps every endpoint a plain function (no hand-written state enums) while the driver stays
//! in control of all IO, synchronous or asynchronous. It is sound because a run is deterministic given
//! its inputs, the clock value fixed at flow creation, the answers so far and the random bytes drawn
//! so far: random draws are recorded like answers and replayed in order, so a token generated before
//! an op (and sent to the store inside it) is the same token the final run returns. Each op is
//! executed by the store exactly once, so atomic ops (taking a code, rotating a refresh token) are
//! never repeated. Requests need at most a handful of ops, so the re-runs cost little next to a store
//! round trip.
//!
//! Replays are kept cheap, because a request with `n` ops runs its code `n + 1` times: `Cx::ask`
//! builds its op with a closure that only runs when the op is actually unanswered, and returns a
//! reference to the recorded answer (the answers outlive the run) instead of a copy. Code that needs
//! to own part of an answer clones that part explicitly.
//!
//! # Driving a flow
//! 1. Call [`Flow::step`] with a randomness source. It takes the flow by value.
//! 2. On [`Next::Op`], execute the op against the store and pass the reply to the [`Waiting`] flow
//!    that came with it: [`Waiting::answer`] gives the flow back; go to 1.
//! 3. On [`Next::Done`], apply [`Done::effects`] to the store, in order, and only then deliver
//!    [`Done::output`] (a response that names a code or token must not leave before the store has it).
//!
//! [`drive`] and [`drive_async`] do exactly this.
//!
//! # Misuse the types rule out
//! A reply is recorded only through the [`Waiting`] value of the step that asked for it, and
//! answering consumes it: a reply with no question pending, two replies to one question, or a
//! reply handed to another flow's question cannot be written, so a replay can never read an answer
//! to a question it did not ask. A [`Flow`] cannot be stepped while it waits for a reply, because
//! stepping consumed it.
//!
//! ```compile_fail
//! # use oauth_proto::{flow::Flow, store::Reply};
//! fn answer_unasked<P: oauth_proto::flow::Procedure>(flow: &mut Flow<P>, reply: Reply) {
//!     flow.answer(reply); // no such method: only a `Waiting` flow takes a reply
//! }
//! ```
//!
//! [`Procedure`] is sealed: its code runs on a context type outside crates cannot name, so only
//! the engine's endpoints implement it, and a driver can be generic over any of them.
//!
//! ```compile_fail
//! struct Mine;
//! impl oauth_proto::flow::Procedure for Mine {
//!     type Output = ();
//!     fn run(&self, cx: &mut oauth_proto::flow::Cx<'_>) -> Result<(), oauth_proto::flow::Suspend> {
//!         Ok(())
//!     }
//! }
//! ```

use crate::random::Random;
use crate::store::{AsyncStore, Effect, Op, Reply, Store, StoreError};

pub(crate) use run::{Cx, Suspend};

/// The context endpoint code runs in. Its types are `pub` inside a private module: nameable in this
/// crate, unnameable outside it, which is what seals [`Procedure`] (see the module docs).
mod run {
    use super::*;

    /// Signals that a run stopped at an unanswered op (carried inside). Only [`Cx::ask`] creates it.
    #[derive(Debug)]
    pub struct Suspend(pub(super) Box<Op>);

    /// The context an endpoint's code runs in: clock, randomness, store answers, recorded effects.
    pub struct Cx<'a> {
        pub(super) now: u64,
        pub(super) rng: &'a mut dyn Random,
        /// Every draw so far, each as its length (u32 LE) and its bytes, back to back in one buffer.
        pub(super) draws: &'a mut Vec<u8>,
        /// Where the next draw to replay starts in `draws`.
        pub(super) drawn: usize,
        pub(super) answers: &'a [Reply],
        pub(super) asked: usize,
        pub(super) effects: Vec<Effect>,
    }

    impl<'a> Cx<'a> {
        /// The current time (Unix seconds), fixed for the whole flow.
        pub fn now(&self) -> u64 {
            self.now
        }

        /// The randomness source. Draws are recorded, so every replay of the flow sees the same bytes.
        pub fn rng(&mut self) -> &mut dyn Random {
            self
        }

        /// Asks the store: returns the recorded answer, or suspends the run until the driver answers.
        /// `op` builds the question; it is called only when the question is not answered yet, so
        /// replays do not rebuild ops the store already answered.
        pub fn ask(&mut self, op: impl FnOnce() -> Op) -> Result<&'a Reply, Suspend> {
            if let Some(reply) = self.answers.get(self.asked) {
                self.asked += 1;
                return Ok(reply);
            }
            Err(Suspend(Box::new(op())))
        }

        /// Records a write to apply when the flow is done.
        pub fn effect(&mut self, effect: Effect) {
            self.effects.push(effect);
        }
    }

    impl Random for Cx<'_> {
        fn fill(&mut self, dest: &mut [u8]) {
            let at = self.drawn;
            let len = (dest.len() as u32).to_le_bytes();
            let start = at + len.len();
            let end = start + dest.len();
            match (self.draws.get(at..start), self.draws.get(start..end)) {
                (Some(recorded_len), Some(recorded)) if recorded_len == len => {
                    dest.copy_from_slice(recorded)
                }
                // A draw of another size than recorded means the run diverged, which determinism rules
                // out; draw fresh rather than return mismatched bytes.
                _ => {
                    self.rng.fill(dest);
                    self.draws.truncate(at);
                    self.draws.reserve(len.len() + dest.len());
                    self.draws.extend_from_slice(&len);
                    self.draws.extend_from_slice(dest);
                }
            }
            self.drawn = end;
        }
    }
}

/// An endpoint's code: a deterministic function of its request, the clock and the store's answers.
///
/// Sealed: only this crate's endpoints implement it (see the module docs). Drivers name it to be
/// generic over every flow, e.g. `fn run<P: Procedure>(flow: Flow<P>) -> P::Output`.
pub trait Procedure {
    /// What the flow produces (usually a [`Response`](crate::response::Response)).
    type Output;
    /// Runs the code. Returns `Err(Suspend)` only by propagating [`Cx::ask`]'s.
    #[doc(hidden)]
    fn run(&self, cx: &mut Cx<'_>) -> Result<Self::Output, Suspend>;
}

/// A finished flow: what to send, and what to write first.
#[derive(Debug)]
#[must_use = "apply the effects, then deliver the output"]
pub struct Done<T> {
    /// The result for the caller.
    pub output: T,
    /// Writes to apply, in order, before delivering `output`.
    pub effects: Vec<Effect>,
}

/// What the driver must do next.
// `Op` carries the op and the flow; the value is matched at once and moved no further, so boxing
// the large variant would only add an allocation per op.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[must_use]
pub enum Next<P: Procedure> {
    /// Execute this op against the store and give the reply to the [`Waiting`] flow.
    Op(Op, Waiting<P>),
    /// The flow is finished.
    Done(Done<P::Output>),
}

/// One request in progress.
#[derive(Debug)]
#[must_use = "step the flow"]
pub struct Flow<P> {
    procedure: P,
    now: u64,
    answers: Vec<Reply>,
    draws: Vec<u8>,
}

/// A flow stopped at one question to the store: the only thing that takes the store's reply.
#[derive(Debug)]
#[must_use = "answer the op, then step the flow"]
pub struct Waiting<P>(Flow<P>);

impl<P: Procedure> Flow<P> {
    /// A flow for `procedure` at time `now`.
    pub(crate) fn new(procedure: P, now: u64) -> Self {
        Flow {
            procedure,
            now,
            answers: Vec::new(),
            draws: Vec::new(),
        }
    }

    /// Runs the procedure as far as the answers so far allow.
    pub fn step(mut self, rng: &mut dyn Random) -> Next<P> {
        let mut cx = Cx {
            now: self.now,
            rng,
            draws: &mut self.draws,
            drawn: 0,
            answers: &self.answers,
            asked: 0,
            effects: Vec::new(),
        };
        match self.procedure.run(&mut cx) {
            Ok(output) => Next::Done(Done {
                output,
                effects: cx.effects,
            }),
            Err(Suspend(op)) => Next::Op(*op, Waiting(self)),
        }
    }
}

impl<P: Procedure> Waiting<P> {
    /// Records the store's reply to the op this flow stopped at, and gives the flow back to step.
    pub fn answer(self, reply: Reply) -> Flow<P> {
        let mut flow = self.0;
        flow.answers.push(reply);
        flow
    }
}

/// Runs a flow to completion against a synchronous store, applying its effects.
pub fn drive<P: Procedure>(
    mut flow: Flow<P>,
    store: &(impl Store + ?Sized),
    rng: &mut dyn Random,
) -> Result<P::Output, StoreError> {
    loop {
        match flow.step(rng) {
            Next::Op(op, waiting) => flow = waiting.answer(store.execute(op)?),
            Next::Done(done) => {
                if !done.effects.is_empty() {
                    store.apply(done.effects)?;
                }
                return Ok(done.output);
            }
        }
    }
}

/// Runs a flow to completion against an asynchronous store, applying its effects.
pub async fn drive_async<P: Procedure>(
    mut flow: Flow<P>,
    store: &impl AsyncStore,
    rng: &mut (dyn Random + Send),
) -> Result<P::Output, StoreError> {
    loop {
        match flow.step(rng) {
            Next::Op(op, waiting) => flow = waiting.answer(store.execute(op).await?),
            Next::Done(done) => {
                if !done.effects.is_empty() {
                    store.apply(done.effects).await?;
                }
                return Ok(done.output);
            }
        }
    }
}
