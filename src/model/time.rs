//! Wall-clock instants as carried inside commands (milliseconds since the Unix epoch).

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    pub fn now() -> Self {
        let since_epoch =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        UnixMillis(since_epoch.as_millis() as u64)
    }

    pub fn saturating_sub(self, other: UnixMillis) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.saturating_sub(other.0))
    }

    pub fn plus(self, duration: std::time::Duration) -> Self {
        UnixMillis(self.0.saturating_add(duration.as_millis() as u64))
    }

    /// RFC 3339 UTC with millisecond precision, as the REST contract requires.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|instant| instant.format(&format).ok())
            .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_rfc3339())
    }
}

/// Serializes a [`UnixMillis`] as an RFC 3339 string in API responses.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339(pub UnixMillis);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_utc_with_millis() {
        assert_eq!(UnixMillis(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(UnixMillis(1_764_000_000_123).to_rfc3339(), "2025-11-24T16:00:00.123Z");
    }
}
