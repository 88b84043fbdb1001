//! Typed instructions: one Rust type per Dockerfile instruction, built from raw nodes with validated flags.

mod commands;
mod context;
mod duration;
mod flags;
mod mount;
mod parse;
mod parse_config;
mod parse_files;
mod parse_run;
mod parse_stage;
mod ports;
mod signal;

pub use commands::*;
pub use mount::{CacheSharing, Mount, MountType};
pub use parse::{parse_instruction, InstructionError, InstructionWarning};
pub use ports::{PortRange, Protocol};
pub use signal::check_stop_signal;
