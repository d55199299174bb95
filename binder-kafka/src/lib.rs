//! # bindery-kafka
//!
//! The Kafka binder for bindery (binder type `kafka`, on `rdkafka`). Not implemented yet: this
//! crate reserves the package name and place in the workspace. Until it lands, a binding whose
//! binder is `kafka` fails at startup with an error saying the type is not linked.
