//! Graceful shutdown needs to know when the requests that do work are done. A session's event
//! stream (a GET) stays open for as long as the client likes, so it is not waited for: it is closed
//! once the work is done or the grace is over. Everything else counts until its response body has
//! been sent, which for a streamed (SSE) reply is when the result went out.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;
use http_body::{Frame, SizeHint};
use tokio::sync::Notify;

/// Requests in flight, and a way to wait until there are none.
#[derive(Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Resolves once no request is in flight.
    pub(crate) async fn idle(&self) {
        loop {
            // Registered before the check, so a request finishing in between still wakes us.
            let woken = self.idle.notified();
            if self.count() == 0 {
                return;
            }
            woken.await;
        }
    }

    fn enter(self: &Arc<Self>) -> Guard {
        self.count.fetch_add(1, Ordering::AcqRel);
        Guard(self.clone())
    }
}

struct Guard(Arc<InFlight>);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Counts every request but event-stream GETs until its response body is done.
pub(crate) async fn track(
    State(in_flight): State<Arc<InFlight>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::GET {
        return next.run(request).await;
    }
    let guard = in_flight.enter();
    let response = next.run(request).await;
    response.map(|body| {
        Body::new(Guarded {
            body,
            _guard: guard,
        })
    })
}

/// A response body that holds its request's place in `InFlight` until it is dropped.
struct Guarded {
    body: Body,
    _guard: Guard,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_the_last_guard() {
        let in_flight = Arc::new(InFlight::default());
        in_flight.idle().await;
        let first = in_flight.enter();
        let second = in_flight.enter();
        let waiter = tokio::spawn({
            let in_flight = in_flight.clone();
            async move { in_flight.idle().await }
        });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(second);
        waiter.await.unwrap();
        assert_eq!(in_flight.count(), 0);
    }
}
