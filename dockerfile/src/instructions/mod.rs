//! Typed instructions: one Rust type per Dockerfile instruction, built from raw nodes with validated flags.

mod commands;
mod duration;
mod flags;
mod mount;
mod parse;
mod ports;
mod signal;

pub use commands::*;
pub use mount::{CacheSharing, Mount, MountType};
pub use parse::{parse_instruction, InstructionError, InstructionWarning};
pub use ports::{PortRange, Protocol};
pub use signal::check_stop_signal;
