//! Log messages from tools to the client (`notifications/message`), with the level the client
//! chose.

// MCP's logging utility is deprecated by SEP-2577 (rmcp marks its types so), yet every protocol
// version toolgate serves still has it, and clients still show these messages.
#![allow(deprecated)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use rmcp::RoleServer;
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::service::{Peer, ServiceError};
use serde_json::Value;

/// The severity of a log message, as syslog (RFC 5424) and MCP order them: `Debug` is the least
/// severe. A client asks for a minimum level; messages below it are not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Detailed information for debugging.
    Debug,
    /// Ordinary operational messages.
    Info,
    /// Normal but significant events.
    Notice,
    /// Warning conditions.
    Warning,
    /// Error conditions.
    Error,
    /// Critical conditions.
    Critical,
    /// Action must be taken immediately.
    Alert,
    /// The system is unusable.
    Emergency,
}

impl LogLevel {
    const ALL: [LogLevel; 8] = [
        Self::Debug,
        Self::Info,
        Self::Notice,
        Self::Warning,
        Self::Error,
        Self::Critical,
        Self::Alert,
        Self::Emergency,
    ];
}

impl From<LoggingLevel> for LogLevel {
    fn from(level: LoggingLevel) -> Self {
        match level {
            LoggingLevel::Debug => Self::Debug,
            LoggingLevel::Info => Self::Info,
            LoggingLevel::Notice => Self::Notice,
            LoggingLevel::Warning => Self::Warning,
            LoggingLevel::Error => Self::Error,
            LoggingLevel::Critical => Self::Critical,
            LoggingLevel::Alert => Self::Alert,
            LoggingLevel::Emergency => Self::Emergency,
        }
    }
}

impl From<LogLevel> for LoggingLevel {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Debug => Self::Debug,
            LogLevel::Info => Self::Info,
            LogLevel::Notice => Self::Notice,
            LogLevel::Warning => Self::Warning,
            LogLevel::Error => Self::Error,
            LogLevel::Critical => Self::Critical,
            LogLevel::Alert => Self::Alert,
            LogLevel::Emergency => Self::Emergency,
        }
    }
}

/// The minimum level one session asked for with `logging/setLevel`; shared by the session's
/// handler and every tool call in it, so a change applies to calls already running.
#[derive(Clone, Debug, Default)]
pub(crate) struct SessionLogLevel(Arc<AtomicU8>);

impl SessionLogLevel {
    /// Zero means the client never set a level.
    const UNSET: u8 = 0;

    pub(crate) fn set(&self, level: LogLevel) {
        self.0.store(level as u8 + 1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Option<LogLevel> {
        match self.0.load(Ordering::Relaxed) {
            Self::UNSET => None,
            stored => LogLevel::ALL.get(usize::from(stored - 1)).copied(),
        }
    }
}

pub(crate) async fn send(
    peer: &Peer<RoleServer>,
    level: LogLevel,
    logger: &str,
    data: Value,
) -> Result<(), ServiceError> {
    peer.notify_logging_message(
        LoggingMessageNotificationParam::new(level.into(), data).with_logger(logger),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_from_debug_to_emergency() {
        assert!(LogLevel::Debug < LogLevel::Info);
        assert!(LogLevel::Warning < LogLevel::Error);
        assert!(LogLevel::Alert < LogLevel::Emergency);
    }

    #[test]
    fn a_session_level_round_trips_and_starts_unset() {
        let level = SessionLogLevel::default();
        assert_eq!(level.get(), None);
        for each in LogLevel::ALL {
            level.set(each);
            assert_eq!(level.get(), Some(each));
            assert_eq!(LogLevel::from(LoggingLevel::from(each)), each);
        }
    }
}
