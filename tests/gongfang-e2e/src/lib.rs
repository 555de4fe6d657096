//! Helpers for Gongfang's end-to-end tests: real service processes a test can stop, restart
//! and send commands to; a real drill under hostile load ([`hostile`]).

pub mod hostile;
pub mod loud;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// A service running as a child process that prints `listening on ADDR` when it accepts
/// connections (the key-value test service does). Killed when dropped.
#[derive(Debug)]
pub struct ServiceProcess {
    program: PathBuf,
    addr: SocketAddr,
    data: PathBuf,
    child: Option<Child>,
}

impl ServiceProcess {
    /// Starts `program ADDR DATA` and waits until it listens. With port 0 in `addr` the
    /// service picks a port, which restarts then reuse.
    pub fn start(program: &Path, addr: SocketAddr, data: &Path) -> anyhow::Result<ServiceProcess> {
        let mut service = ServiceProcess { program: program.to_owned(), addr, data: data.to_owned(), child: None };
        service.restart()?;
        Ok(service)
    }

    /// Where the service listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Kills the process (as a crash would) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same address with the same data.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let mut child = Command::new(&self.program)
            .arg(self.addr.to_string())
            .arg(&self.data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", self.program.display()))?;
        let stdout = child.stdout.take().context("child has no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            bail!("{} did not start listening; it said {line:?}", self.program.display());
        };
        self.addr = addr.parse().with_context(|| format!("bad address in {line:?}"))?;
        self.child = Some(child);
        Ok(())
    }

    /// Sends one command line and returns the answer line.
    pub fn command(&self, line: &str) -> anyhow::Result<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        writeln!(stream, "{line}")?;
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer)?;
        Ok(answer.trim_end().to_owned())
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
