//! A command run inside a service's container with its input and output attached, as the
//! container's own user and with none of the engine's extra privileges: what a defender's
//! shell session is made of. Plain Docker only; a Swarm task may run on another node's engine.

use std::pin::Pin;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWrite;

use crate::{Error, Result, is_not_found};

/// What to run, where and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub container: String,
    /// The program and its arguments; the container's image must hold the program.
    pub command: Vec<String>,
    /// `uid[:gid]`: the service's own user, never root unless the service runs as root.
    pub user: String,
    /// A terminal of `(columns, rows)`, or plain pipes when `None`.
    pub terminal: Option<(u16, u16)>,
    /// `NAME=value` pairs added to the container's environment.
    pub env: Vec<String>,
}

/// Output of an attached command: standard output (and the terminal's, with one), or errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutput {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// A started command: its output as it comes, its input until it is shut down.
pub struct Attached {
    /// The engine's id of the exec, for [`resize`] and [`exit_code`].
    pub id: String,
    pub output: Pin<Box<dyn Stream<Item = Result<ExecOutput>> + Send>>,
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Starts `request` in its running container.
pub async fn start(docker: &Docker, request: &ExecRequest) -> Result<Attached> {
    let action = || format!("run a command in {}", request.container);
    let created = docker
        .create_exec(
            &request.container,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(request.terminal.is_some()),
                env: Some(request.env.clone()),
                cmd: Some(request.command.clone()),
                privileged: Some(false),
                user: Some(request.user.clone()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| {
            if is_not_found(&e) { Error::NotFound(request.container.clone()) } else { Error::docker(action())(e) }
        })?;
    let options = StartExecOptions { detach: false, tty: request.terminal.is_some(), output_capacity: None };
    match docker.start_exec(&created.id, Some(options)).await.map_err(Error::docker(action()))? {
        StartExecResults::Attached { output, input } => {
            let container = request.container.clone();
            let output = output.filter_map(move |item| {
                let item = match item {
                    Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                        Some(Ok(ExecOutput::Stdout(message)))
                    }
                    Ok(LogOutput::StdErr { message }) => Some(Ok(ExecOutput::Stderr(message))),
                    Ok(LogOutput::StdIn { .. }) => None,
                    Err(e) => Some(Err(Error::docker(format!("read a command's output in {container}"))(e))),
                };
                std::future::ready(item)
            });
            if let Some((columns, rows)) = request.terminal {
                resize(docker, &created.id, columns, rows).await?;
            }
            Ok(Attached { id: created.id, output: Box::pin(output), input })
        }
        StartExecResults::Detached => {
            Err(Error::Plan(format!("the engine detached the command in {}", request.container)))
        }
    }
}

/// Gives a started command's terminal a new size.
pub async fn resize(docker: &Docker, id: &str, columns: u16, rows: u16) -> Result<()> {
    docker
        .resize_exec(id, ResizeExecOptions { width: columns.max(1), height: rows.max(1) })
        .await
        .map_err(Error::docker("resize a command's terminal"))
}

/// The exit code of a finished command; `None` while it runs.
pub async fn exit_code(docker: &Docker, id: &str) -> Result<Option<i64>> {
    let inspected = docker.inspect_exec(id).await.map_err(Error::docker("inspect a command"))?;
    Ok(if inspected.running == Some(true) { None } else { inspected.exit_code })
}
