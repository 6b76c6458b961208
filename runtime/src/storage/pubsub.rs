//! Publish/subscribe on a store: the building block for telling every replica of the server that
//! something changed (a revoked grant), so each can drop what it cached.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What a [`Subscription`] reports, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionEvent {
    /// Subscribed: messages published from now on arrive. After a `Down`, anything published
    /// while the subscription was down was missed, so a cache kept fresh by these messages should
    /// be dropped now.
    Up,
    /// A message published on the channel.
    Message(Vec<u8>),
    /// The subscription is down (the store cannot be reached; the reason says why, without
    /// secrets). It keeps trying and reports `Up` once subscribed again; until then messages are
    /// missed, so rely on short cache lifetimes.
    Down(String),
}

/// The messages of one channel, as a `Stream` of [`SubscriptionEvent`]s. The first event is `Up`
/// or `Down`; after that, `Down` and `Up` alternate with messages in between. A message published
/// before the first `Up` may be missed. The stream does not end while the subscription lives;
/// dropping it unsubscribes.
pub struct Subscription {
    events: mpsc::Receiver<SubscriptionEvent>,
    /// What feeds `events`, started on the first poll so that `subscribe` needs no runtime.
    start: Option<BoxFuture<'static, ()>>,
    task: Option<JoinHandle<()>>,
    /// Keeps `events` open for a subscription that has nothing behind it.
    _idle: Option<mpsc::Sender<SubscriptionEvent>>,
}

/// Events the consumer has not taken yet; beyond this the feeding task waits for it.
pub(crate) const SUBSCRIPTION_BUFFER: usize = 256;

impl Subscription {
    /// A subscription fed by `task` through the sending half of the channel it was given.
    pub(crate) fn new(
        events: mpsc::Receiver<SubscriptionEvent>,
        task: BoxFuture<'static, ()>,
    ) -> Self {
        Self {
            events,
            start: Some(task),
            task: None,
            _idle: None,
        }
    }

    /// A subscription that is down for good, for stores without publish/subscribe: whoever
    /// relies on it keeps short cache lifetimes.
    pub fn unsupported(reason: impl Into<String>) -> Self {
        let (sender, events) = mpsc::channel(1);
        let _ = sender.try_send(SubscriptionEvent::Down(reason.into()));
        Self {
            events,
            start: None,
            task: None,
            _idle: Some(sender),
        }
    }

    /// The next event (`StreamExt::next` without the import).
    pub async fn next_event(&mut self) -> Option<SubscriptionEvent> {
        futures::StreamExt::next(self).await
    }
}

impl Stream for Subscription {
    type Item = SubscriptionEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(start) = self.start.take() {
            self.task = Some(tokio::spawn(start));
        }
        self.events.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("started", &self.start.is_none())
            .finish()
    }
}
