//! Flows: how a request that needs the store is run without the engine touching the store.
//!
//! Every endpoint is written as straight-line code over a [`Cx`]: it calls [`Cx::ask`] when it needs
//! an [`Op`] answered and [`Cx::effect`] to record a write. A [`Flow`] runs that code; the first time
//! it reaches an unanswered op it stops and hands the op to the driver ([`Step::Op`]). The driver
//! answers ([`Flow::answer`]) and steps again: the code re-runs from the top with the answers recorded
//! so far, replayed in order, until it finishes ([`Step::Done`]) with its output and effects.
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
//! Replays are kept cheap, because a request with `n` ops runs its code `n + 1` times: [`Cx::ask`]
//! builds its op with a closure that only runs when the op is actually unanswered, and returns a
//! reference to the recorded answer (the answers outlive the run) instead of a copy. Code that needs
//! to own part of an answer clones that part explicitly.
//!
//! # Driving a flow
//! 1. Call [`Flow::step`] with a randomness source.
//! 2. On [`Step::Op`], execute the op against the store and pass the reply to [`Flow::answer`]; go to 1.
//! 3. On [`Step::Done`], apply [`Done::effects`] to the store, in order, and only then deliver
//!    [`Done::output`] (a response that names a code or token must not leave before the store has it).
//!
//! [`drive`] and [`drive_async`] do exactly this.

use crate::random::Random;
use crate::store::{AsyncStore, Effect, Op, Reply, Store, StoreError};

/// Signals that a run stopped at an unanswered op (carried inside). Only [`Cx::ask`] creates it.
#[derive(Debug)]
pub struct Suspend(Box<Op>);

/// The context an endpoint's code runs in: clock, randomness, store answers, recorded effects.
pub struct Cx<'a> {
    now: u64,
    rng: &'a mut dyn Random,
    /// Every draw so far, each as its length (u32 LE) and its bytes, back to back in one buffer.
    draws: &'a mut Vec<u8>,
    /// Where the next draw to replay starts in `draws`.
    drawn: usize,
    answers: &'a [Reply],
    asked: usize,
    effects: Vec<Effect>,
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

/// An endpoint's code: a deterministic function of its request, the clock and the store's answers.
pub trait Procedure {
    /// What the flow produces (usually a [`Response`](crate::response::Response)).
    type Output;
    /// Runs the code. Returns `Err(Suspend)` only by propagating [`Cx::ask`]'s.
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
#[derive(Debug)]
#[must_use]
pub enum Step<T> {
    /// Execute this op against the store and [`Flow::answer`] the reply.
    Op(Op),
    /// The flow is finished.
    Done(Done<T>),
}

/// One request in progress.
#[derive(Debug)]
pub struct Flow<P> {
    procedure: P,
    now: u64,
    answers: Vec<Reply>,
    draws: Vec<u8>,
}

impl<P: Procedure> Flow<P> {
    /// A flow for `procedure` at time `now`.
    pub fn new(procedure: P, now: u64) -> Self {
        Flow {
            procedure,
            now,
            answers: Vec::new(),
            draws: Vec::new(),
        }
    }

    /// Runs the procedure as far as the answers so far allow.
    pub fn step(&mut self, rng: &mut dyn Random) -> Step<P::Output> {
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
            Ok(output) => Step::Done(Done {
                output,
                effects: cx.effects,
            }),
            Err(Suspend(op)) => Step::Op(*op),
        }
    }

    /// Records the store's reply to the op the last [`Flow::step`] returned.
    pub fn answer(&mut self, reply: Reply) {
        self.answers.push(reply);
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
            Step::Op(op) => flow.answer(store.execute(op)?),
            Step::Done(done) => {
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
        let step = flow.step(rng);
        match step {
            Step::Op(op) => flow.answer(store.execute(op).await?),
            Step::Done(done) => {
                if !done.effects.is_empty() {
                    store.apply(done.effects).await?;
                }
                return Ok(done.output);
            }
        }
    }
}
