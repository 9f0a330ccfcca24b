//! How fast one (account, region, service) is called: a token bucket whose rate
//! falls when AWS answers "throttled" and climbs back while it answers normally.
//!
//! Why not the SDK's adaptive retry mode: its client-side rate limiter is shared by
//! every client of a service in the process (all accounts and regions), and it starts
//! from the send rate measured so far, so a few throttles early in a sweep left a
//! whole service at a trickle (a 0.6 s sweep took 38 s at 20% throttled answers).
//! This one is per (account, region, service), so one throttled account slows only
//! itself, and it follows the same shape (CUBIC, as in TCP and the SDKs' adaptive
//! mode): when throttles are a third or more of the answers of the last two seconds,
//! the rate drops to 70% of what was actually being sent, at most once per second
//! (the throttles of calls already in flight are one event), then grows back along a
//! cubic curve that reaches the old rate in a few seconds and probes above it after.
//! Without throttles it never waits unless `max_rate` caps it.
//!
//! Why a share and not every throttle: a throttle now and then is the retry's job.
//! Reacting to each one ratcheted the rate down whenever throttles came regardless of
//! the rate (one answer in five throttled left about 2 calls a second, the trickle
//! this replaces), while against a real quota (a bucket refilling 20 a second) the
//! share rule settles about a fifth above the quota, as the every-throttle rule does.
//!
//! Every attempt counts, retries included: an [`Observer`] interceptor on each client
//! reads the SDK's own retry classification after each attempt, and a retry takes a
//! token without waiting (the bucket may go below zero), so the retries of throttled
//! calls delay the next new calls instead of adding to the load.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime::client::retries::classifiers::run_classifiers_on_ctx;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::retries::classifiers::{RetryAction, RetryReason};
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::ErrorKind;
use std::time::Instant;

/// Share of the measured send rate kept after a throttle.
const BETA: f64 = 0.7;
/// CUBIC's scaling constant (calls per second per second cubed).
const C: f64 = 0.4;
/// Throttles closer together than this are one congestion event.
const COOLDOWN: Duration = Duration::from_secs(1);
/// The rate never falls below this (calls per second): slowed, never stopped.
pub const MIN_RATE: f64 = 0.5;
/// The window over which the send rate and the share of throttles are measured (this
/// one and the one before).
const WINDOW: Duration = Duration::from_secs(1);
/// The rate falls only when throttles are at least this share of the answers of the
/// last two windows, and at least [`MIN_THROTTLES`] of them.
const THROTTLE_SHARE: f64 = 0.3;
const MIN_THROTTLES: u64 = 3;

/// What a pacer did over its life, for the sweep's report.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PaceReport {
    pub calls: u64,
    pub throttles: u64,
    /// Congestion events: throttles that lowered the rate.
    pub slowdowns: u64,
    /// The lowest rate it was set to, calls per second (`None`: never slowed).
    pub lowest_rate: Option<f64>,
    /// Time spent waiting for a token, summed over every call.
    pub waited: Duration,
}

#[derive(Debug)]
struct State {
    /// Calls per second allowed now (infinite: unpaced).
    rate: f64,
    max_rate: f64,
    tokens: f64,
    refilled: Instant,
    /// CUBIC's W_max: the rate when the last slowdown happened.
    rate_at_slowdown: f64,
    last_slowdown: Option<Instant>,
    created: Instant,
    /// What happened in the current and the previous measuring window.
    window_start: Instant,
    current: Tally,
    previous: Tally,
    report: PaceReport,
}

#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    sent: u64,
    throttled: u64,
    answered: u64,
}

impl State {
    fn refill(&mut self, now: Instant) {
        if self.rate.is_finite() {
            let dt = now.saturating_duration_since(self.refilled).as_secs_f64();
            // A second's worth of burst at most.
            self.tokens = (self.tokens + dt * self.rate).min(self.rate.max(1.0));
        }
        self.refilled = now;
    }

    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= WINDOW * 2 {
            self.previous = Tally::default();
            self.current = Tally::default();
            self.window_start = now;
        } else if elapsed >= WINDOW {
            self.previous = self.current;
            self.current = Tally::default();
            self.window_start += WINDOW;
        }
    }

    fn count_send(&mut self, now: Instant) {
        self.roll(now);
        self.current.sent += 1;
        self.report.calls += 1;
    }

    /// Whether throttles are a large enough share of the recent answers to slow down.
    fn congested(&self) -> bool {
        let throttled = self.previous.throttled + self.current.throttled;
        let answered = self.previous.answered + self.current.answered;
        throttled >= MIN_THROTTLES
            && throttled as f64 >= THROTTLE_SHARE * (throttled + answered) as f64
    }

    /// Calls per second actually sent over about the last window.
    fn measured(&self, now: Instant) -> f64 {
        let into = now
            .saturating_duration_since(self.window_start)
            .as_secs_f64()
            .min(WINDOW.as_secs_f64());
        // Not longer than the pacer has existed: no empty window before the first.
        let span = (WINDOW.as_secs_f64() + into)
            .min(now.saturating_duration_since(self.created).as_secs_f64())
            .max(0.001);
        (self.previous.sent + self.current.sent) as f64 / span
    }

    fn set_rate(&mut self, rate: f64) {
        self.rate = rate.clamp(MIN_RATE, self.max_rate);
        if self.rate.is_finite() {
            self.tokens = self.tokens.min(self.rate.max(1.0));
        }
    }
}

/// The pace of one (account, region, service).
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<State>,
}

impl Pacer {
    /// A pacer that starts at `max_rate` calls per second (`f64::INFINITY`: no cap
    /// until AWS throttles).
    pub fn new(max_rate: f64) -> Pacer {
        Pacer::new_at(max_rate, Instant::now())
    }

    fn new_at(max_rate: f64, now: Instant) -> Pacer {
        let max_rate = if max_rate.is_nan() || max_rate <= 0.0 {
            f64::INFINITY
        } else {
            max_rate.max(MIN_RATE)
        };
        Pacer {
            state: Mutex::new(State {
                rate: max_rate,
                max_rate,
                tokens: if max_rate.is_finite() {
                    max_rate.max(1.0)
                } else {
                    0.0
                },
                refilled: now,
                rate_at_slowdown: max_rate,
                last_slowdown: None,
                created: now,
                window_start: now,
                current: Tally::default(),
                previous: Tally::default(),
                report: PaceReport::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until a call may be sent, and counts it.
    pub async fn acquire(&self) {
        let started = Instant::now();
        while let Err(wait) = self.try_take(Instant::now(), started) {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token at `now` for a call that began waiting at `since`, or says how
    /// long to wait for one.
    fn try_take(&self, now: Instant, since: Instant) -> Result<(), Duration> {
        let mut s = self.lock();
        if !s.rate.is_finite() {
            s.count_send(now);
            return Ok(());
        }
        s.refill(now);
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            s.count_send(now);
            s.report.waited += now.saturating_duration_since(since);
            return Ok(());
        }
        Err(Duration::from_secs_f64(
            ((1.0 - s.tokens) / s.rate).max(0.001),
        ))
    }

    /// A retry the SDK is about to send: it takes a token without waiting (the bucket
    /// may go negative), so the next new calls wait for it instead.
    pub fn retry_sent(&self) {
        self.retry_sent_at(Instant::now());
    }

    fn retry_sent_at(&self, now: Instant) {
        let mut s = self.lock();
        s.refill(now);
        if s.rate.is_finite() {
            s.tokens = (s.tokens - 1.0).max(-s.rate.max(1.0));
        }
        s.count_send(now);
    }

    /// AWS answered "slow down": counted, and the rate falls when throttles have
    /// become a large share of the answers.
    pub fn throttled(&self) {
        self.throttled_at(Instant::now());
    }

    fn throttled_at(&self, now: Instant) {
        let mut s = self.lock();
        s.report.throttles += 1;
        s.roll(now);
        s.current.throttled += 1;
        if !s.congested()
            || s.last_slowdown
                .is_some_and(|t| now.saturating_duration_since(t) < COOLDOWN)
        {
            return;
        }
        s.refill(now);
        // From what was really being sent: a cap far above the actual rate would take
        // many halvings before it slowed anything.
        let sent = s.measured(now).max(MIN_RATE);
        let current = s.rate.min(sent);
        s.rate_at_slowdown = current;
        s.last_slowdown = Some(now);
        s.set_rate(current * BETA);
        s.report.slowdowns += 1;
        let rate = s.rate;
        s.report.lowest_rate = Some(s.report.lowest_rate.map_or(rate, |l| l.min(rate)));
    }

    /// An attempt got a normal answer: the rate grows back along the cubic curve.
    pub fn answered(&self) {
        self.answered_at(Instant::now());
    }

    fn answered_at(&self, now: Instant) {
        let mut s = self.lock();
        s.roll(now);
        s.current.answered += 1;
        let Some(at) = s.last_slowdown else { return };
        s.refill(now);
        let t = now.saturating_duration_since(at).as_secs_f64();
        let w_max = s.rate_at_slowdown;
        let k = (w_max * (1.0 - BETA) / C).cbrt();
        let target = C * (t - k).powi(3) + w_max;
        // Back at the cap, or (uncapped) well past the old rate: unpaced again.
        if target >= s.max_rate || (!s.max_rate.is_finite() && target >= 2.0 * w_max) {
            let max = s.max_rate;
            s.set_rate(max);
            s.last_slowdown = None;
        } else if target > s.rate {
            s.set_rate(target);
        }
    }

    /// The rate allowed now, calls per second.
    #[cfg(test)]
    fn rate(&self) -> f64 {
        self.lock().rate
    }

    pub fn report(&self) -> PaceReport {
        self.lock().report
    }

    /// The interceptor that tells this pacer about every attempt of a client's calls.
    pub fn observer(self: &Arc<Self>) -> Observer {
        Observer(Arc::clone(self))
    }
}

/// Reads each attempt's outcome with the SDK's own retry classifiers (the same that
/// decide its retries) and tells the pacer: throttled, answered, or neither (a
/// transient or permanent error says nothing about the rate).
#[derive(Debug, Clone)]
pub struct Observer(Arc<Pacer>);

impl Intercept for Observer {
    fn name(&self) -> &'static str {
        "guardrail::pace::Observer"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The first attempt took its token in `Context::permit`.
        if cfg
            .load::<RequestAttempts>()
            .is_some_and(|a| a.attempts() > 1)
        {
            self.0.retry_sent();
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let action =
            run_classifiers_on_ctx(runtime_components.retry_classifiers(), context.inner());
        match action {
            RetryAction::RetryIndicated(RetryReason::RetryableError {
                kind: ErrorKind::ThrottlingError,
                ..
            }) => self.0.throttled(),
            _ if matches!(context.output_or_error(), Some(Ok(_))) => self.0.answered(),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pacer driven by a clock of its own: `send` waits by moving the clock.
    struct Clock {
        now: Instant,
        p: Pacer,
    }

    impl Clock {
        fn new(max_rate: f64) -> Clock {
            let now = Instant::now();
            Clock {
                now,
                p: Pacer::new_at(max_rate, now),
            }
        }

        fn advance(&mut self, d: Duration) {
            self.now += d;
        }

        /// Sends `n` calls, each answered; how long they took.
        fn send(&mut self, n: usize) -> Duration {
            let start = self.now;
            for _ in 0..n {
                self.take();
                self.p.answered_at(self.now);
            }
            self.now - start
        }

        fn take(&mut self) {
            let since = self.now;
            while let Err(wait) = self.p.try_take(self.now, since) {
                self.now += wait;
            }
        }
    }

    #[test]
    fn unthrottled_calls_never_wait() {
        let mut c = Clock::new(f64::INFINITY);
        assert_eq!(c.send(1000), Duration::ZERO);
        assert_eq!(c.p.report().slowdowns, 0);
        assert_eq!(c.p.report().calls, 1000);
    }

    #[test]
    fn a_cap_spaces_calls() {
        let mut c = Clock::new(10.0);
        // A second's burst, then 10 a second.
        let took = c.send(30);
        assert!(
            (Duration::from_millis(1900)..=Duration::from_millis(2100)).contains(&took),
            "{took:?}"
        );
    }

    #[test]
    fn a_throttle_slows_to_part_of_what_was_sent_and_the_rate_comes_back() {
        let mut c = Clock::new(f64::INFINITY);
        // 20 calls a second for two seconds.
        for _ in 0..40 {
            c.send(1);
            c.advance(Duration::from_millis(50));
        }
        // Then every answer is a throttle: the first few are the retries' job.
        for _ in 0..8 {
            c.p.throttled_at(c.now);
        }
        assert!(c.p.rate().is_infinite());
        for _ in 0..12 {
            c.p.throttled_at(c.now);
        }
        let slowed = c.p.rate();
        assert!((12.0..=15.0).contains(&slowed), "{slowed}");
        // Throttles of the calls already in flight are the same event.
        c.advance(Duration::from_millis(100));
        c.p.throttled_at(c.now);
        c.p.throttled_at(c.now);
        assert_eq!(c.p.rate(), slowed);
        assert_eq!(c.p.report().throttles, 22);
        assert_eq!(c.p.report().slowdowns, 1);
        // The next calls are spaced at the new rate.
        let took = c.send(10);
        assert!(took >= Duration::from_millis(400), "{took:?}");
        // Answers over the next seconds bring it back to unpaced.
        for _ in 0..100 {
            c.advance(Duration::from_millis(100));
            c.send(1);
        }
        assert!(c.p.rate().is_infinite(), "{}", c.p.rate());
        assert!(c.p.report().waited > Duration::ZERO);
    }

    #[test]
    fn persistent_throttling_slows_down_to_the_floor_never_to_zero() {
        let mut c = Clock::new(f64::INFINITY);
        for _ in 0..200 {
            c.take();
            c.p.throttled_at(c.now);
            c.advance(Duration::from_millis(200));
        }
        let rate = c.p.rate();
        assert!((MIN_RATE..=1.0).contains(&rate), "{rate}");
        assert!(c.p.report().lowest_rate.is_some_and(|l| l >= MIN_RATE));
        // Slowed, not stopped: a call every two seconds.
        let took = c.send(3);
        assert!(took <= Duration::from_secs(6), "{took:?}");
    }

    #[test]
    fn retries_take_tokens_from_the_next_calls() {
        let mut c = Clock::new(10.0);
        c.send(10); // the burst is spent
        for _ in 0..5 {
            c.p.retry_sent_at(c.now);
        }
        // Five retries owed: the next call waits for them and itself.
        let took = c.send(1);
        assert!(took >= Duration::from_millis(550), "{took:?}");
    }

    #[test]
    fn the_rate_returns_to_the_cap_and_stays_there() {
        let mut c = Clock::new(50.0);
        for _ in 0..40 {
            c.send(1);
            c.advance(Duration::from_millis(25));
        }
        for _ in 0..20 {
            c.p.throttled_at(c.now);
        }
        assert!(c.p.rate() < 40.0, "{}", c.p.rate());
        for _ in 0..200 {
            c.advance(Duration::from_millis(100));
            c.p.answered_at(c.now);
        }
        assert_eq!(c.p.rate(), 50.0);
    }

    /// One throttled answer in five whatever the rate, as `scripts/faultproxy.py`
    /// gives: retries handle it, and the pace is not ratcheted down to a trickle.
    #[test]
    fn one_throttle_in_five_answers_keeps_a_useful_rate() {
        let mut c = Clock::new(f64::INFINITY);
        for i in 0..3000 {
            c.take();
            if i % 5 == 4 {
                c.p.throttled_at(c.now);
            } else {
                c.p.answered_at(c.now);
            }
            // Calls take 20 ms each with four in flight: 200 a second at most.
            c.advance(Duration::from_millis(5));
        }
        let rate = c.p.rate();
        assert!(rate > 100.0, "{rate} calls/s after {:?}", c.p.report());
    }

    /// A quota as AWS keeps one (a bucket of 100 refilling 20 a second) and a sender
    /// that would go at 200 a second: the pace settles near the quota, and far fewer
    /// answers are throttles than without it.
    #[test]
    fn against_a_quota_the_pace_settles_near_it() {
        let mut c = Clock::new(f64::INFINITY);
        let (mut bucket, mut refilled) = (100.0_f64, c.now);
        let mut throttles = 0;
        let start = c.now;
        for _ in 0..3000 {
            c.take();
            bucket = (bucket + (c.now - refilled).as_secs_f64() * 20.0).min(100.0);
            refilled = c.now;
            if bucket >= 1.0 {
                bucket -= 1.0;
                c.p.answered_at(c.now);
            } else {
                throttles += 1;
                c.p.throttled_at(c.now);
            }
            c.advance(Duration::from_millis(5));
        }
        let rate = 3000.0 / (c.now - start).as_secs_f64();
        // Unpaced: 15 s at 200 a second, 2,600 of 3,000 answers throttled.
        assert!((15.0..=60.0).contains(&rate), "{rate} calls/s");
        assert!(throttles < 1500, "{throttles} throttles");
    }
}
