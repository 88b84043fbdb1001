//! Subcommands of the `lade` command line.

pub mod dockerfile;
