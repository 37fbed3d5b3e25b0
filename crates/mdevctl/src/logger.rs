//! stderr logging in upstream's format: `[<RFC 3339 time> <LEVEL> <module>] <message>`,
//! filtered by `MDEVCTL_LOG` (default `warn`).

use std::io::Write;
use std::time::SystemTime;

use log::{Level, LevelFilter, Log, Metadata, Record};

#[derive(Debug)]
struct StderrLogger {
    level: LevelFilter,
}

impl Log for StderrLogger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let ts = humantime::format_rfc3339_seconds(SystemTime::now());
        let level = match r.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        let _ = writeln!(
            std::io::stderr().lock(),
            "[{ts} {level} {}] {}",
            r.target(),
            r.args()
        );
    }

    fn flush(&self) {}
}

/// Parses `MDEVCTL_LOG`: a level name, or `module=level` pairs of which the last level
/// wins (module filtering is not worth a dependency for a command this small).
fn parse_filter(spec: Option<&str>) -> LevelFilter {
    let Some(spec) = spec else {
        return LevelFilter::Warn;
    };
    spec.split(',')
        .filter_map(|part| part.rsplit('=').next())
        .filter_map(|lvl| lvl.trim().parse::<LevelFilter>().ok())
        .next_back()
        .unwrap_or(LevelFilter::Warn)
}

pub fn init() {
    let level = parse_filter(std::env::var("MDEVCTL_LOG").ok().as_deref());
    if log::set_boxed_logger(Box::new(StderrLogger { level })).is_ok() {
        log::set_max_level(level);
    }
}
