//! A local Worker: `wrangler dev` (workerd, with D1 as local SQLite) and its migrations.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::{Result, root, run};

/// A running `wrangler dev`, stopped when dropped.
pub struct Wrangler {
    /// wrangler, the leader of a process group of its own: its esbuild and workerd are in the
    /// group too, and are stopped with it, as a whole, on drop.
    child: Child,
    /// Already stopped and reaped (by [`Wrangler::kill_hard`]): nothing left for drop to do.
    gone: bool,
    pub base_url: String,
}

fn wrangler() -> Command {
    in_edge(Command::new(root().join("node_modules/.bin/wrangler")))
}

/// `cmd` run as wrangler is: from `edge/`, kept off the network.
fn in_edge(mut cmd: Command) -> Command {
    cmd.current_dir(root().join("edge"))
        // Keep wrangler off the network: no telemetry, no fetch of `request.cf` data.
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false");
    // Wrangler appends a debug log of every run (~50 MB for one `cargo xtask test`) to its
    // folder in the home directory, where they pile up across clones: keep them with the
    // build instead, where `cargo xtask test` clears them when it passes.
    cmd.env("WRANGLER_LOG_PATH", log_path());
    cmd
}

/// Where xtask has wrangler write its debug logs, unless `WRANGLER_LOG_PATH` says otherwise.
pub fn logs() -> PathBuf {
    root().join("target/xtask/wrangler-logs")
}

/// Where wrangler's debug logs go: the caller's `WRANGLER_LOG_PATH`, or [`logs`].
pub fn log_path() -> PathBuf {
    std::env::var_os("WRANGLER_LOG_PATH").map_or_else(logs, PathBuf::from)
}

/// Applies `edge/migrations/` to the local D1 kept in `state`.
pub fn migrate(state: &Path) -> Result<()> {
    migrate_with(state, None)
}

/// The same for the Worker of another configuration (its own `migrations_dir`).
pub fn migrate_with(state: &Path, config: Option<&Path>) -> Result<()> {
    let mut cmd = wrangler();
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    run(cmd
        .args(["d1", "migrations", "apply", "DB", "--local", "--persist-to"])
        .arg(state)
        // Answer wrangler's confirmation prompt: there is no one at a terminal to ask.
        .env("CI", "true"))
}

/// Runs SQL against the local D1 kept in `state` (benchmarks seed leads with it).
pub fn d1_execute(state: &Path, sql: &str) -> Result<()> {
    run(wrangler()
        .args(["d1", "execute", "DB", "--local", "--persist-to"])
        .arg(state)
        .arg("--command")
        .arg(sql)
        .env("CI", "true"))
}

pub struct Options<'a> {
    pub port: u16,
    pub state: &'a Path,
    /// Dev: the wrangler command line, with its DevTools inspector. Tests and benchmarks: no
    /// inspector, which relays every subrequest's network events (each D1 query among them) to
    /// wrangler's debug log at a cost larger than the Worker's own work (see
    /// `xtask/wrangler-dev.mjs`), and warnings only.
    pub inspector: bool,
    /// Plain variables (`--var NAME:VALUE`); secrets come from `edge/.dev.vars`.
    pub vars: Vec<(String, String)>,
    /// Where workerd keeps its temporary files (the .eml files of `send_email`, among them).
    pub tmpdir: Option<&'a Path>,
    /// Another configuration than `edge/wrangler.toml` (it must sit beside it: its paths are
    /// relative).
    pub config: Option<&'a Path>,
}

impl Wrangler {
    pub fn start(opts: &Options<'_>) -> Result<Wrangler> {
        let mut cmd = if opts.inspector {
            let mut cmd = wrangler();
            if let Some(config) = opts.config {
                cmd.arg("--config").arg(config);
            }
            cmd.args(["dev", "--ip", "127.0.0.1"])
                .arg("--show-interactive-dev-session=false")
                .arg("--port");
            cmd
        } else {
            let config = opts
                .config
                .map_or_else(|| root().join("edge/wrangler.toml"), Path::to_path_buf);
            let mut cmd = in_edge(Command::new("node"));
            cmd.arg(root().join("xtask/wrangler-dev.mjs"))
                .arg("--config")
                .arg(config)
                .arg("--port");
            cmd
        };
        cmd.arg(opts.port.to_string())
            .arg("--persist-to")
            .arg(opts.state)
            // Lets xtask fire the cron trigger (GET /__scheduled), which wrangler dev never does.
            .arg("--test-scheduled");
        for (name, value) in &opts.vars {
            cmd.arg("--var").arg(format!("{name}:{value}"));
        }
        if let Some(dir) = opts.tmpdir {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            cmd.env("TMPDIR", dir);
        }
        // A group of its own, so that the whole tree can be stopped (see `stop_on_signals`).
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("could not start wrangler: {e}"))?;
        if let Ok(mut running) = RUNNING.lock() {
            running.push(child.id());
        }
        let mut wrangler = Wrangler {
            child,
            gone: false,
            base_url: format!("http://127.0.0.1:{}", opts.port),
        };
        wrangler.wait_healthy(Duration::from_secs(90))?;
        Ok(wrangler)
    }

    fn wait_healthy(&mut self, limit: Duration) -> Result<()> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let url = format!("{}/healthz", self.base_url);
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("wrangler dev exited early ({status})"));
            }
            if agent.get(&url).call().is_ok() {
                eprintln!(
                    "xtask: worker ready at {} after {:.1}s",
                    self.base_url,
                    start.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(format!(
            "wrangler dev did not answer {url} within {limit:?}"
        ))
    }

    /// Resident memory of the workerd processes this wrangler runs, in KiB.
    pub fn workerd_rss_kib(&self) -> Option<u64> {
        let mut total = 0;
        for (pid, comm) in group_members(self.child.id()) {
            if comm != "workerd" {
                continue;
            }
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            total += status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_default();
        }
        (total > 0).then_some(total)
    }

    /// CPU time the Worker runtime has used so far, in ms: the workerd processes of this
    /// wrangler's group other than the dev proxy in front of it (the one listening on our
    /// port), which production does not have. Linux only.
    pub fn runtime_cpu_ms(&self) -> Option<f64> {
        let proxy = format!("entry=127.0.0.1:{}", self.base_url.rsplit(':').next()?);
        let mut ticks = 0;
        for (pid, comm) in group_members(self.child.id()) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if comm != "workerd" || String::from_utf8_lossy(&cmdline).contains(&proxy) {
                continue;
            }
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
            let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
            let mut fields = rest.split_whitespace().skip(11);
            let mut next = || fields.next().and_then(|f| f.parse::<u64>().ok());
            ticks += next().unwrap_or_default() + next().unwrap_or_default();
        }
        // Linux reports them in USER_HZ, 100 a second on every common configuration.
        (ticks > 0).then_some(ticks as f64 * 10.0)
    }

    /// Kills wrangler and its workerd at once with SIGKILL, as a crash or an OOM killer would:
    /// no graceful shutdown, nothing flushed. Returns once no process of the group is left
    /// (a restart on the same state must not race the dying workerd for its SQLite files).
    pub fn kill_hard(mut self) -> Result<()> {
        let group = self.child.id();
        let status = Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .status()
            .map_err(|e| format!("could not run kill: {e}"))?;
        if !status.success() {
            return Err(format!("kill -KILL -- -{group} failed ({status})"));
        }
        let _ = self.child.wait();
        self.gone = true;
        forget(group);
        // workerd is wrangler's child: once wrangler is reaped it is reparented and reaped
        // elsewhere, so wait until no live process is left in the group.
        if gone_within(group, Duration::from_secs(10)) {
            Ok(())
        } else {
            Err(format!("processes of group {group} outlived SIGKILL"))
        }
    }

    /// Waits until wrangler exits (dev: until xtask is told to stop, see [`stop_on_signals`]).
    pub fn wait(mut self) -> Result<()> {
        let status = self.child.wait().map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("wrangler dev exited ({status})"))
        }
    }
}

/// The process groups of the Workers running now (each led by its wrangler).
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Set once a signal has asked xtask to stop.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// However xtask is asked to stop (Ctrl-C, a `kill`, the terminal closing unless under `nohup`),
/// stops every Worker it started, each a process group of its own that the signal does not
/// reach, and waits until none of them is left, so that no wrangler, esbuild or workerd lives
/// on holding a port; then exits as the signal would have it.
pub fn stop_on_signals() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut wanted = vec![SIGINT, SIGTERM];
    if !ignored(SIGHUP) {
        wanted.push(SIGHUP);
    }
    let mut signals = signal_hook::iterator::Signals::new(wanted).map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            STOPPING.store(true, Ordering::SeqCst);
            let groups = RUNNING.lock().map(|g| g.clone()).unwrap_or_default();
            if !groups.is_empty() {
                eprintln!("xtask: stopping the Workers it started");
            }
            for group in groups {
                stop_group(group);
            }
            std::process::exit(128 + signal);
        }
    });
    Ok(())
}

/// Whether a signal has asked xtask to stop: what fails from then on (a Worker gone, tests that
/// lost theirs) is the stop, not a failure to report; the handler exits soon.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Stops process group `group`: SIGTERM, then SIGKILL if any of it is left after 5 s. Returns
/// once none of it is left (workerd outlives wrangler by a moment), so that its port and state
/// are free, or 5 s after the SIGKILL at most.
fn stop_group(group: u32) {
    let target = format!("-{group}");
    let _ = Command::new("kill").args(["-TERM", "--", &target]).status();
    if !gone_within(group, Duration::from_secs(5)) {
        let _ = Command::new("kill").args(["-KILL", "--", &target]).status();
        gone_within(group, Duration::from_secs(5));
    }
}

/// Whether no live process is left in group `group` within `limit` (zombies do not count).
fn gone_within(group: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if group_members(group).is_empty() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether this process ignores `signal` (as `nohup` has it ignore SIGHUP). Linux only.
fn ignored(signal: i32) -> bool {
    ignored_in(
        &std::fs::read_to_string("/proc/self/status").unwrap_or_default(),
        signal,
    )
}

/// The same, read from the `SigIgn` mask of a `/proc/PID/status`.
fn ignored_in(status: &str, signal: i32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

impl Drop for Wrangler {
    fn drop(&mut self) {
        if self.gone {
            return;
        }
        // wrangler runs esbuild and workerd as children: stop the whole group.
        let group = self.child.id();
        stop_group(group);
        let _ = self.child.wait();
        forget(group);
    }
}

/// Takes `group` off the Workers [`stop_on_signals`] would stop.
fn forget(group: u32) {
    if let Ok(mut running) = RUNNING.lock() {
        running.retain(|&g| g != group);
    }
}

/// Live (not zombie) processes in process group `group`, as (pid, command name).
fn group_members(group: u32) -> Vec<(u32, String)> {
    let group = group.to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid pgrp …
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1);
        if pgrp == Some(group.as_str()) && state != Some("Z") && state != Some("X") {
            let comm = head.split_once(" (").map(|(_, c)| c).unwrap_or_default();
            found.push((pid, comm.to_owned()));
        }
    }
    found
}

/// A port nobody is listening on right now.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// A configuration derived from `edge/wrangler.toml`, written beside it (its paths are relative)
/// as `edge/wrangler.{name}.toml` (git-ignored): the same Worker with both rate limits set to
/// `rate_limit` requests a minute, and without the queue consumer unless `consumer`.
pub fn derived_config(name: &str, rate_limit: u32, consumer: bool) -> Result<PathBuf> {
    let edge = root().join("edge");
    let mut config =
        std::fs::read_to_string(edge.join("wrangler.toml")).map_err(|e| e.to_string())?;
    if !consumer {
        let start = config
            .find("[[queues.consumers]]")
            .ok_or("wrangler.toml has no queue consumer")?;
        let end = config[start..]
            .find("\n\n")
            .map_or(config.len(), |i| start + i);
        config.replace_range(start..end, "");
    }
    for binding in ["IP_RATE_LIMIT", "SITE_RATE_LIMIT"] {
        let at = config
            .find(&format!("name = \"{binding}\""))
            .ok_or(format!("wrangler.toml has no {binding}"))?;
        let start = at
            + config[at..]
                .find("limit = ")
                .ok_or(format!("{binding} has no limit"))?
            + "limit = ".len();
        let end = start
            + config[start..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(0);
        config.replace_range(start..end, &rate_limit.to_string());
    }
    let path = edge.join(format!("wrangler.{name}.toml"));
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::ignored_in;
    use signal_hook::consts::{SIGHUP, SIGINT, SIGPIPE};

    #[test]
    fn a_signal_is_ignored_when_its_bit_is_in_the_mask() {
        // As under `nohup` from a shell that ignores SIGPIPE too: bits 1 and 13.
        let status = "Name:\txtask\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001001\n";
        assert!(ignored_in(status, SIGHUP));
        assert!(ignored_in(status, SIGPIPE));
        assert!(!ignored_in(status, SIGINT));
        assert!(!ignored_in("SigIgn:\t0000000000000000\n", SIGHUP));
        assert!(
            !ignored_in("", SIGHUP),
            "no mask: nothing known to be ignored"
        );
    }
}
