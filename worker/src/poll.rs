//! The timer that makes each queue's worker look for jobs again.
//!
//! apalis' `IntervalStrategy` replaces its timer when it fires but leaves the new one unpolled,
//! so nothing holds the worker's waker until the next poll. When the same poll then finds the
//! queue empty, apalis parks the worker on its own waker, which only a finishing job or the
//! heartbeat (every 10 s) wakes: with no job running, a job enqueued in that window waited for
//! the heartbeat. The settlement bench showed it as paid quotes nobody took for up to 8 s
//! (queue wait, not run time) while the worker was idle. This strategy arms the next tick
//! before it reports one, so a worker always wakes within its poll interval.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::prelude::{PollSnapshot, PollStrategy};
use tokio::time::{Instant, Sleep};

/// Wakes the worker every `period`, its next tick armed before it reports this one.
#[derive(Debug)]
pub struct ArmedInterval {
    period: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl ArmedInterval {
    /// A timer whose first tick is one `period` from now.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            sleep: Box::pin(tokio::time::sleep(period)),
        }
    }
}

impl Clone for ArmedInterval {
    fn clone(&self) -> Self {
        Self::new(self.period)
    }
}

impl PollStrategy for ArmedInterval {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _snapshot: &PollSnapshot) -> Poll<Option<()>> {
        if self.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.sleep.as_mut().reset(Instant::now() + self.period);
        // Registers the waker with the new deadline (a fresh deadline is never ready yet).
        let _ = self.sleep.as_mut().poll(cx);
        Poll::Ready(Some(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The case apalis' own interval misses: a tick is reported and the caller polls nothing
    /// else; the next tick must still wake it. (The runtime fires timers in deadline order, so
    /// the test's longer sleep ends after the timer's tick.)
    #[tokio::test]
    async fn the_tick_after_a_reported_one_still_wakes() {
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let mut timer = ArmedInterval::new(Duration::from_millis(50));
        let snap = PollSnapshot::default();

        assert!(timer.poll_drive(&mut cx, &snap).is_pending());
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(woken.0.load(Ordering::SeqCst), 1, "first tick wakes");
        assert!(timer.poll_drive(&mut cx, &snap).is_ready());

        // Not polled again: only the armed timer can wake the task now.
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(
            woken.0.load(Ordering::SeqCst),
            2,
            "second tick wakes unpolled"
        );
        assert!(timer.poll_drive(&mut cx, &snap).is_ready());
    }
}
