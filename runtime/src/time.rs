//! The one wall clock: JWT `exp` and `iat`, grant expiry, and stored records' expiry all read it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch. A clock set before 1970 reads as the epoch, which makes everything
/// look expired: failing closed.
pub(crate) fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// [`since_epoch`] in whole seconds, the unit of JWT claims.
pub(crate) fn unix_now() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}
