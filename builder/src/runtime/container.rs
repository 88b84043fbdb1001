//! One container's life: started detached, its output relayed, its exit status waited for, and deleted.
//!
//! A step's output must come in the order the command wrote it, stdout and stderr interleaved, so that a failure's
//! last lines read as they happened. `runc run` in the foreground cannot give that: without a terminal it makes a
//! pipe per stream and copies each in a goroutine of its own. Detached (`--detach`), the runtime hands its own stdio
//! to the container's process instead, so lade gives it one pipe as both stdout and stderr ([`Streams::Merged`],
//! one byte stream in write order) or two ([`Streams::Apart`], for `lade run`, whose streams stay apart). A
//! detached runtime exits once the container has started, and the container's init is reparented to the nearest
//! child subreaper: lade makes itself one and waits for the pid the runtime wrote (`--pid-file`) to learn the exit
//! status. The container is deleted — by force, killing whatever is left of it — when the [`Container`] is
//! dropped, on every path; a lade killed mid-step leaves that to the next [`super::Runtime::detect`], which deletes
//! the containers of dead processes.
//!
//! With a terminal (`lade run -t`) the runtime stays in the foreground, copying between its stdio and the pty.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rustix::process::{Pid, WaitOptions, WaitStatus};

use super::{io_err, RunOutcome, RuntimeError, Stream, TAIL_BYTES};

/// How a container's stdout and stderr reach the output callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streams {
    /// Through one pipe, in the order the command wrote them, as [`Stream::Combined`] (a build's RUN).
    Merged,
    /// Through a pipe each, marked [`Stream::Stdout`] and [`Stream::Stderr`] (`lade run`); the order between the
    /// two is only that in which they were read.
    Apart,
}

/// A container being run; deleted (forcibly, when still there) with its bundle when dropped.
pub(super) struct Container {
    pub(super) binary: PathBuf,
    pub(super) state_root: PathBuf,
    pub(super) id: String,
    pub(super) bundle: layerstore::fsutil::TempDir,
    /// The container's init once it started, until it has been waited for.
    pub(super) init: Option<Pid>,
}

impl Container {
    /// The runtime binary with lade's state root.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("--root").arg(&self.state_root);
        command
    }

    fn spawn_err(&self) -> impl FnOnce(io::Error) -> RuntimeError + '_ {
        |source| RuntimeError::Spawn {
            runtime: self.binary.clone(),
            source,
        }
    }

    /// Runs the container to its end: with the caller's stdin when `interactive`, on the caller's terminal when
    /// `terminal`, else with its output passed to `output` as it comes, split as `streams` says.
    pub(super) fn run(
        &mut self,
        interactive: bool,
        terminal: bool,
        streams: Streams,
        output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<RunOutcome, RuntimeError> {
        let mut command = self.command();
        command.stdin(if interactive || terminal {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
        if terminal {
            // In the foreground the runtime copies between its own stdio and the container's pty.
            let status = command
                .arg("run")
                .arg("--bundle")
                .arg(self.bundle.path())
                .arg(&self.id)
                .status()
                .map_err(self.spawn_err())?;
            return Ok(RunOutcome {
                exit_code: exit_code(status),
                output_tail: Vec::new(),
            });
        }
        become_subreaper()?;
        let pid_file = self.bundle.path().join("init.pid");
        command
            .args(["run", "--detach", "--pid-file"])
            .arg(&pid_file)
            .arg("--bundle")
            .arg(self.bundle.path())
            .arg(&self.id);
        let pipe_err = || io_err("making a pipe for the container's output".into());
        let readers = match streams {
            Streams::Merged => {
                let (reader, writer) = io::pipe().map_err(pipe_err())?;
                command
                    .stdout(writer.try_clone().map_err(pipe_err())?)
                    .stderr(writer);
                vec![(Stream::Combined, reader)]
            }
            Streams::Apart => {
                let (out_reader, out_writer) = io::pipe().map_err(pipe_err())?;
                let (err_reader, err_writer) = io::pipe().map_err(pipe_err())?;
                command.stdout(out_writer).stderr(err_writer);
                vec![(Stream::Stdout, out_reader), (Stream::Stderr, err_reader)]
            }
        };
        let mut runtime = command.spawn().map_err(self.spawn_err())?;
        // The write ends now belong to the runtime and the container: the pipes end when both are done.
        drop(command);
        let output_tail = relay(readers, output);
        let status = runtime.wait().map_err(self.spawn_err())?;
        if !status.success() {
            // The container did not start; the runtime's own message is in the output.
            return Ok(RunOutcome {
                exit_code: exit_code(status),
                output_tail,
            });
        }
        let text = fs::read_to_string(&pid_file)
            .map_err(io_err(format!("reading {}", pid_file.display())))?;
        let init = text
            .trim()
            .parse()
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| RuntimeError::Io {
                context: format!("reading {}", pid_file.display()),
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{text:?} is no process id"),
                ),
            })?;
        self.init = Some(init);
        let status = wait_for(init).map_err(io_err(format!(
            "waiting for the container's process {}",
            init.as_raw_nonzero()
        )))?;
        self.init = None;
        Ok(RunOutcome {
            exit_code: status
                .exit_status()
                .or_else(|| status.terminating_signal().map(|signal| 128 + signal))
                .unwrap_or(128),
            output_tail,
        })
    }
}

/// Makes this process the child subreaper of its descendants, so that a detached container's init, orphaned when
/// the runtime exits, becomes lade's child to wait for. Idempotent.
fn become_subreaper() -> Result<(), RuntimeError> {
    // Any non-zero argument sets the attribute; rustix takes it as a pid.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).map_err(|errno| {
        RuntimeError::Io {
            context: "becoming the child subreaper of the build's containers".into(),
            source: errno.into(),
        }
    })
}

/// Waits for the child `pid` to end (not for other children: those belong to whoever spawned them).
fn wait_for(pid: Pid) -> io::Result<WaitStatus> {
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) if status.exited() || status.signaled() => return Ok(status),
            Ok(_) | Err(rustix::io::Errno::INTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Passes what comes through `readers` to `output` until every one of them ends, each chunk with its stream, and
/// returns the last [`TAIL_BYTES`] in the order they came.
fn relay(readers: Vec<(Stream, io::PipeReader)>, output: &mut dyn FnMut(Stream, &[u8])) -> Vec<u8> {
    let (sender, receiver) = mpsc::channel::<(Stream, Vec<u8>)>();
    let threads: Vec<_> = readers
        .into_iter()
        .map(|(stream, mut pipe)| {
            let sender = sender.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 || sender.send((stream, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(sender);
    let mut tail = VecDeque::with_capacity(TAIL_BYTES);
    for (stream, chunk) in receiver {
        output(stream, &chunk);
        tail.extend(chunk);
        let excess = tail.len().saturating_sub(TAIL_BYTES);
        tail.drain(..excess);
    }
    for thread in threads {
        let _ = thread.join();
    }
    tail.into()
}

/// The exit code, or 128 + the signal number for a process killed by a signal.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

impl Drop for Container {
    /// A detached container stays (stopped) until deleted, as does one the runtime left behind when it failed or was
    /// killed midway: delete it by force, which kills what still runs, then reap its init if nobody did.
    fn drop(&mut self) {
        if self.state_root.join(&self.id).exists() {
            let _ = self
                .command()
                .args(["delete", "-f", &self.id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Some(init) = self.init.take() {
            // Killed by the delete; a bounded wait, so that a delete that failed cannot hang the build here.
            for _ in 0..500 {
                match rustix::process::waitpid(Some(init), WaitOptions::NOHANG) {
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                    _ => break,
                }
            }
        }
    }
}
