//! Typed instructions: one Rust type per Dockerfile instruction, built from raw nodes with validated flags.

pub mod commands;
pub mod duration;
pub mod flags;
pub mod mount;
pub mod parse;
pub mod ports;
pub mod signal;

pub use commands::*;
pub use mount::{CacheSharing, Mount, MountType};
pub use parse::{parse_instruction, InstructionError, InstructionWarning};
pub use ports::{PortRange, Protocol};
