//! Alloy's `--stability.level` as a collector records it (what the level means for rendering:
//! `render::stability`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Alloy's `--stability.level`, lowest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StabilityLevel {
    #[serde(rename = "experimental")]
    Experimental,
    #[serde(rename = "public-preview")]
    PublicPreview,
    #[default]
    #[serde(rename = "generally-available")]
    GenerallyAvailable,
}

impl StabilityLevel {
    pub const ALL: [StabilityLevel; 3] =
        [StabilityLevel::Experimental, StabilityLevel::PublicPreview, StabilityLevel::GenerallyAvailable];

    pub fn parse(text: &str) -> Option<StabilityLevel> {
        StabilityLevel::ALL.into_iter().find(|level| level.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StabilityLevel::Experimental => "experimental",
            StabilityLevel::PublicPreview => "public-preview",
            StabilityLevel::GenerallyAvailable => "generally-available",
        }
    }

    pub fn is_default(&self) -> bool {
        *self == StabilityLevel::GenerallyAvailable
    }
}

impl fmt::Display for StabilityLevel {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}
