//! Which schemas a sync reads.

use serde::{Deserialize, Serialize};

/// Which schemas a sync reads: all user schemas, or only `include`, minus `exclude`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SchemaFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

impl SchemaFilter {
    pub fn admits(&self, schema: &str) -> bool {
        self.include
            .as_ref()
            .is_none_or(|i| i.iter().any(|s| s == schema))
            && !self.exclude.iter().any(|s| s == schema)
    }

    pub fn is_empty(&self) -> bool {
        self.include.is_none() && self.exclude.is_empty()
    }
}
