//! One module per `lade` subcommand.

pub mod registry;
