//! The binder conformance suite (placeholder while the suite is written).
