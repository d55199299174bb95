//! `[binders.<name>]` settings for `type = "memory"`.

use serde::Deserialize;

/// Settings of a memory binder.
///
/// ```toml
/// [binders.local]
/// type = "memory"
/// broker = "shared"        # binders naming one broker talk to each other (default "default")
/// queue-capacity = 1024    # per group; producers wait while a consumed group is this full
/// ```
///
/// ```
/// let c = bindery::Config::from_toml_str("[binders.local]\ntype = \"memory\"\nbroker = \"x\"").unwrap();
/// let opts: bindery_memory::MemoryOptions = c.binder_settings("local").options().unwrap();
/// assert_eq!(opts.broker, "x");
/// assert_eq!(opts.queue_capacity, 1_024);
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MemoryOptions {
    /// Name of the in-process broker.
    pub broker: String,
    /// Queue limit per consumer group before producers wait.
    pub queue_capacity: usize,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        Self { broker: "default".into(), queue_capacity: 1_024 }
    }
}
