//! Running a scratch host and reading what it prints (see `fixtures/harness.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// One invocation of a scratch host.
#[derive(Clone, Debug)]
pub struct Run {
    pub exe: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// What a host printed.
#[derive(Default, Debug)]
pub struct Output {
    pub ns: Vec<f64>,
    pub latency_ms: Vec<f64>,
    pub iterations: Option<u64>,
    pub info: Vec<String>,
    /// `value NAME NUMBER` lines, and (from stderr, with `HOTSWAP_LOG=1`) each phase of the
    /// runtime's `[hotswap] phases: …` lines as `phase:NAME` in milliseconds.
    pub values: BTreeMap<String, Vec<f64>>,
}

impl Run {
    fn command(&self, wrapper: &[String]) -> Command {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(&self.exe);
                command
            }
            None => Command::new(&self.exe),
        };
        command.args(&self.args);
        crate::build::clean_env(&mut command);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Runs the host (under `wrapper`, e.g. valgrind, if not empty) and parses its output.
    pub fn run(&self, wrapper: &[String], timeout: Duration) -> Result<Output, String> {
        let mut child = self
            .command(wrapper)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", self.exe.display()))?;
        // Read both pipes on threads so a chatty child never blocks.
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let out = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
            text
        });
        let err = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let deadline = std::time::Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        let mut parsed = parse(&stdout);
        for (name, ms) in stderr.lines().flat_map(phases) {
            parsed.values.entry(name).or_default().push(ms);
        }
        if !status.success() {
            let tail: Vec<&str> = stderr.lines().rev().take(4).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "exited with {status}: {} {}",
                parsed.info.join("; "),
                tail.join(" / ")
            ));
        }
        Ok(parsed)
    }

    /// The command line as a reader would type it in the run directory.
    pub fn display(&self, work: &Path) -> String {
        let mut words = Vec::new();
        for (key, value) in &self.env {
            words.push(format!("{key}={}", shorten(value, work)));
        }
        words.push(shorten(&self.exe.display().to_string(), work));
        words.extend(self.args.iter().map(|a| shorten(a, work)));
        words.join(" ")
    }
}

pub fn shorten(text: &str, work: &Path) -> String {
    let text = text.replace(&work.display().to_string(), "$WORK");
    // Run directories are numbered per run (`$WORK/run/ID-N/...`): show them as `$WORK/run/ID`.
    match text.strip_prefix("$WORK/run/") {
        Some(rest) => {
            let (dir, below) = rest.split_once('/').unwrap_or((rest, ""));
            let dir = match dir.rsplit_once('-') {
                Some((id, n)) if n.chars().all(|c| c.is_ascii_digit()) => id,
                _ => dir,
            };
            if below.is_empty() {
                format!("$WORK/run/{dir}")
            } else {
                format!("$WORK/run/{dir}/{below}")
            }
        }
        None => text,
    }
}

/// `[hotswap] phases: stage 0.02 ms, check file 0.16 ms, …` → (`phase:stage`, 0.02), …
pub fn phases(line: &str) -> Vec<(String, f64)> {
    let Some(list) = line.trim().strip_prefix("[hotswap] phases: ") else {
        return Vec::new();
    };
    list.split(", ")
        .filter_map(|item| {
            let item = item.trim().strip_suffix(" ms")?;
            let (name, ms) = item.rsplit_once(' ')?;
            Some((format!("phase:{name}"), ms.parse().ok()?))
        })
        .collect()
}

fn parse(stdout: &str) -> Output {
    let mut output = Output::default();
    for line in stdout.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "ns" => output.ns.extend(value.trim().parse::<f64>().ok()),
            "latency_ms" => output.latency_ms.extend(value.trim().parse::<f64>().ok()),
            "iterations" => output.iterations = value.trim().parse().ok(),
            "info" => output.info.push(value.to_string()),
            "value" => {
                if let Some((name, number)) = value.split_once(' ') {
                    if let Ok(number) = number.trim().parse::<f64>() {
                        output
                            .values
                            .entry(name.to_string())
                            .or_default()
                            .push(number);
                    }
                }
            }
            _ => {}
        }
    }
    output
}

/// Instructions per loop iteration of the measuring function `symbol`, counted by callgrind:
/// only that function (and what it calls) is collected, then divided by the iterations the
/// host ran through it.
pub fn callgrind(run: &Run, symbol: &str, work: &Path) -> Result<f64, String> {
    let out = work.join(format!("callgrind.{symbol}.{}.out", std::process::id()));
    let wrapper = vec![
        "valgrind".to_string(),
        "--tool=callgrind".into(),
        format!("--callgrind-out-file={}", out.display()),
        format!("--toggle-collect={symbol}"),
        "--quiet".into(),
    ];
    let output = run.run(&wrapper, Duration::from_secs(600))?;
    let text =
        std::fs::read_to_string(&out).map_err(|err| format!("no callgrind output ({err})"))?;
    let _ = std::fs::remove_file(&out);
    let total: f64 = text
        .lines()
        .find_map(|line| line.strip_prefix("totals:"))
        .or_else(|| text.lines().find_map(|line| line.strip_prefix("summary:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or("callgrind output without totals")?;
    let iterations = output
        .iterations
        .ok_or("the host did not report its iterations")?;
    Ok(total / iterations as f64)
}

pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// Nearest-rank percentile.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
