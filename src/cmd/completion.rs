//! `lade completion bash|zsh|fish`: a shell completion script for every verb and flag, generated from the CLI
//! definition (clap_complete), on stdout.

use std::io::Write;

use clap_complete::Shell;

/// Arguments of `lade completion`.
#[derive(clap::Args)]
pub struct Args {
    /// The shell to complete for (bash, zsh, fish; elvish and powershell work too)
    shell: Shell,
}

/// Writes the script for `args.shell` to stdout.
pub fn run(args: Args, mut command: clap::Command) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "lade", &mut script);
    match std::io::stdout().write_all(&script) {
        // `lade completion bash | head`: the reader had enough.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => Ok(result?),
    }
}
