//! # bindery-rabbit
//!
//! The RabbitMQ binder for bindery (binder type `rabbit`, on `lapin`). Not implemented yet: this
//! crate reserves the package name and place in the workspace. Until it lands, a binding whose
//! binder is `rabbit` fails at startup with an error saying the type is not linked.
