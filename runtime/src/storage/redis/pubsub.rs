//! Subscriptions in Redis: one dedicated connection per subscription, watched by a task that
//! reports `Up` and `Down`, PINGs the connection so a silently dead one is noticed, and subscribes
//! again (on another node, or on the new master) when the connection is lost.

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::PubSub;
use ::redis::{Client, RedisError, RedisResult, Value};
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;

use super::Generation;
use super::cluster::PubSubNodes;
use super::sentinel::SentinelMaster;
use crate::storage::{COMMAND_TIMEOUT, SUBSCRIPTION_BUFFER, Subscription, SubscriptionEvent};

/// How often an idle subscription's connection is checked with PING.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// The first wait before subscribing again after a failure; it doubles up to `MAX_RETRY_DELAY`.
const MIN_RETRY_DELAY: Duration = Duration::from_millis(50);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Where a subscription connects.
pub(super) enum Source {
    Single(Box<Client>),
    Cluster(Arc<PubSubNodes>),
    Sentinel(SentinelMaster),
}

pub(super) fn subscribe(source: Source, channel: String, address: String) -> Subscription {
    let (events, receiver) = mpsc::channel(SUBSCRIPTION_BUFFER);
    Subscription::new(receiver, run(source, channel, address, events).boxed())
}

async fn run(
    source: Source,
    channel: String,
    address: String,
    events: mpsc::Sender<SubscriptionEvent>,
) {
    // `None` until the first report, so the caller always learns the state it starts in.
    let mut up = None;
    let mut delay = MIN_RETRY_DELAY;
    // Cluster nodes are tried in turn, so one dead node does not keep the subscription down.
    let mut turn = 0;
    loop {
        // Each step of `connect` is bounded: a node by the command timeout, the sentinels by
        // their discovery timeout.
        let reason = match connect(&source, &channel, &mut turn).await {
            Ok((pubsub, master)) => {
                delay = MIN_RETRY_DELAY;
                tracing::info!(address = %address, channel = %channel, "subscribed to a Redis channel");
                if events.send(SubscriptionEvent::Up).await.is_err() {
                    return;
                }
                up = Some(true);
                let reason = match listen(pubsub, &events).await {
                    Some(reason) => reason,
                    // The subscriber is gone.
                    None => return,
                };
                // The master it was on may be gone: ask the sentinels again.
                if let (Source::Sentinel(sentinel), Some(generation)) = (&source, master) {
                    sentinel.retire(generation);
                }
                reason
            }
            Err(reason) => reason,
        };
        if up != Some(false) {
            tracing::warn!(
                address = %address,
                channel = %channel,
                reason = %reason,
                "a Redis subscription is down; subscribing again when Redis answers"
            );
            if events.send(SubscriptionEvent::Down(reason)).await.is_err() {
                return;
            }
            up = Some(false);
        }
        if events.is_closed() {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
}

/// Passes messages on until the connection fails (`Some(reason)`) or the subscriber goes (`None`).
async fn listen(pubsub: PubSub, events: &mpsc::Sender<SubscriptionEvent>) -> Option<String> {
    let (mut sink, mut messages) = pubsub.split();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    return Some("the connection to Redis was lost".to_owned());
                };
                let event = SubscriptionEvent::Message(message.get_payload_bytes().to_vec());
                if events.send(event).await.is_err() {
                    return None;
                }
            }
            _ = ping.tick() => {
                match tokio::time::timeout(COMMAND_TIMEOUT, sink.ping::<Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Some(describe(&error)),
                    Err(_) => return Some("Redis did not answer a PING in time".to_owned()),
                }
            }
            () = events.closed() => return None,
        }
    }
}

/// A subscribed connection, and with Sentinel the generation of the master it is on.
async fn connect(
    source: &Source,
    channel: &str,
    turn: &mut usize,
) -> Result<(PubSub, Option<Generation>), String> {
    match source {
        Source::Single(client) => subscribe_on(client, channel)
            .await
            .map(|pubsub| (pubsub, None))
            .map_err(|e| describe(&e)),
        Source::Sentinel(sentinel) => {
            let master = sentinel.master().await.map_err(|e| describe(&e))?;
            match subscribe_on(&master.client, channel).await {
                Ok(pubsub) => Ok((pubsub, Some(master.generation))),
                Err(error) => {
                    sentinel.retire(master.generation);
                    Err(describe(&error))
                }
            }
        }
        Source::Cluster(nodes) => {
            let candidates = nodes.candidates();
            let mut last = "no Redis Cluster node to subscribe on".to_owned();
            for offset in 0..candidates.len() {
                let node = &candidates[(*turn + offset) % candidates.len()];
                let client = match nodes.client(node) {
                    Ok(client) => client,
                    Err(error) => {
                        last = describe(&error);
                        continue;
                    }
                };
                match subscribe_on(&client, channel).await {
                    Ok(pubsub) => {
                        // Next time, start after this one: it is the likeliest to have failed.
                        *turn = (*turn + offset + 1) % candidates.len();
                        nodes.learn_from(&client).await;
                        return Ok((pubsub, None));
                    }
                    Err(error) => last = format!("{node}: {}", describe(&error)),
                }
            }
            *turn = turn.wrapping_add(1);
            Err(last)
        }
    }
}

async fn subscribe_on(client: &Client, channel: &str) -> RedisResult<PubSub> {
    tokio::time::timeout(COMMAND_TIMEOUT, async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok(pubsub)
    })
    .await
    .unwrap_or_else(|_| {
        Err(RedisError::from((
            ::redis::ErrorKind::Io,
            "Redis did not answer SUBSCRIBE in time",
        )))
    })
}

/// Redis errors name the failure, never a credential.
fn describe(error: &RedisError) -> String {
    if super::refuses_credentials(error) {
        return "Redis refused the credentials".to_owned();
    }
    error.to_string()
}
