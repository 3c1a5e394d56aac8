//! Helpers for black-box tests: build the `tollgate` binary, start it on a free port with real services, stop it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod mailbox;

/// The workspace root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the binary once per test process (cargo makes this a no-op when it is fresh) and returns its path.
pub fn tollgate_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "billing-app", "--bin", "tollgate"])
            .current_dir(repo_root())
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building the tollgate binary failed");
        let target =
            std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target"));
        target.join("debug").join("tollgate")
    })
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A fresh PostgreSQL database for one test, created through `psql` on `TEST_POSTGRES_URL`; returns its URL.
pub fn postgres_database() -> String {
    let admin =
        std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("tollgate_e2e_{}", uuid_like());
    let created = Command::new("psql")
        .args([admin.as_str(), "-v", "ON_ERROR_STOP=1", "-qc", &format!("CREATE DATABASE {name}")])
        .status()
        .expect("psql is needed to create the e2e database (scripts/test installs PostgreSQL)");
    assert!(created.success(), "PostgreSQL must be running at {admin} (scripts/test starts it)");
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).expect("a database URL");
    format!("{base}/{name}")
}

/// 32 hex digits, unique enough for database names (the pattern scripts/test cleans up).
fn uuid_like() -> String {
    use std::hash::{BuildHasher, RandomState};
    let a = RandomState::new().hash_one(std::process::id());
    let b = RandomState::new().hash_one(Instant::now());
    format!("{a:016x}{b:016x}")
}

/// A running `tollgate serve`, stopped with SIGTERM on drop.
pub struct Server {
    pub child: Child,
    pub base_url: String,
}

impl Server {
    /// Starts the binary with `env` on top of the repository's development configuration and waits for `/healthz`.
    pub fn start(env: &[(&str, String)]) -> Server {
        Self::start_logging(env, None)
    }

    /// Like [`Server::start`], writing the server's log lines (stdout and stderr) to `log` when given.
    pub fn start_logging(env: &[(&str, String)], log: Option<&Path>) -> Server {
        let port = free_port();
        let base_url = format!("http://127.0.0.1:{port}");
        let mut command = Command::new(tollgate_binary());
        command
            .arg("serve")
            .current_dir(repo_root())
            .env("TOLLGATE_ENV", "development")
            .env("TOLLGATE_CONFIG_DIR", repo_root().join("config"))
            .env("TOLLGATE__SERVER__PORT", port.to_string())
            .env("TOLLGATE__SERVER__HOST", "127.0.0.1")
            .env("TOLLGATE__SERVER__PUBLIC_URL", &base_url)
            .env("TOLLGATE__TELEMETRY__FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(log) = log {
            let file = std::fs::File::create(log).expect("creating the server log");
            command.stdout(file.try_clone().expect("log file")).stderr(file);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("starting tollgate");
        let server = Server { child, base_url };
        server.wait_healthy(Duration::from_secs(60));
        server
    }

    fn wait_healthy(&self, limit: Duration) {
        let started = Instant::now();
        let url = format!("{}/healthz", self.base_url);
        while started.elapsed() < limit {
            if let Ok(response) = reqwest::blocking_get(&url)
                && response == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("tollgate did not become healthy at {url} within {limit:?}");
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "tollgate did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Minimal blocking GET for readiness polling without pulling a second HTTP client.
mod reqwest {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub fn blocking_get(url: &str) -> std::io::Result<u16> {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
        let mut stream = TcpStream::connect(host)?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok(status)
    }
}
