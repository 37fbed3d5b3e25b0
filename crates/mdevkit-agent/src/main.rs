//! The `mdevkit-agent` binary: parse options, connect to the API server (in-cluster, or
//! `--kubeconfig`), and run the agent until SIGTERM or SIGINT.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use log::{LevelFilter, Log, Metadata, Record};
use mdevkit::desired::state::Paths;
use mdevkit::ops::Settings;
use mdevkit::Roots;
use mdevkit_agent::agent::{self, AgentConfig};
use mdevkit_agent::labels::{LabelKey, LabelKeys, DEFAULT_PROFILE_LABEL, DEFAULT_STATE_LABEL};
use mdevkit_agent::node::NodeApi;
use mdevkit_agent::reconcile::HostSetup;

/// Applies the mdevkit desired-state profile named by a label on this node.
#[derive(Debug, Parser)]
#[command(name = "mdevkit-agent", version)]
struct Cli {
    /// This node's name (the Downward API's spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    node_name: String,
    /// The desired-state file (a ConfigMap's mount).
    #[arg(short = 'f', long, default_value = "/etc/mdevkit/config.yaml")]
    file: PathBuf,
    /// The node label naming the profile to apply.
    #[arg(long, default_value = DEFAULT_PROFILE_LABEL)]
    profile_label: LabelKey,
    /// The node label the agent sets to pending, success or failed.
    #[arg(long, default_value = DEFAULT_STATE_LABEL)]
    state_label: LabelKey,
    /// How often the host is checked against the profile (drift is re-applied).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    period: Duration,
    /// How long an apply waits for parents or types that are not there yet.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    wait: Duration,
    /// A kubeconfig file instead of the in-cluster service account (for development).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

#[derive(Debug)]
struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level() && m.target().starts_with("mdevkit")
    }

    fn log(&self, r: &Record<'_>) {
        if self.enabled(r.metadata()) {
            let _ = writeln!(
                std::io::stderr().lock(),
                "mdevkit-agent: {}: {}",
                r.level(),
                r.args()
            );
        }
    }

    fn flush(&self) {}
}

/// Logs to stderr (the container log) at `MDEVCTL_LOG`'s level, `info` by default.
fn init_log() {
    let level = std::env::var("MDEVCTL_LOG")
        .ok()
        .and_then(|s| s.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::Info);
    if log::set_boxed_logger(Box::new(StderrLogger)).is_ok() {
        log::set_max_level(level);
    }
}

async fn client(kubeconfig: Option<&PathBuf>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("cannot use kubeconfig {}", path.display()))?
        }
        None => kube::Config::incluster().context(
            "cannot use the in-cluster service account (outside a pod, give --kubeconfig)",
        )?,
    };
    kube::Client::try_from(config).context("cannot make a Kubernetes client")
}

async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::warn!("cannot handle SIGTERM/SIGINT; stopping by their default action");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    log::info!("stopping");
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var_os(k);
    let host = HostSetup {
        roots: Roots::from_env(env),
        paths: Paths::from_env(env),
        settings: Settings::from_env(env)?,
        wait: cli.wait,
    };
    let config = AgentConfig {
        file: cli.file,
        labels: LabelKeys {
            profile: cli.profile_label,
            state: cli.state_label,
        },
        period: cli.period,
        host,
    };
    anyhow::ensure!(!config.period.is_zero(), "--period must be more than 0");
    let api = NodeApi::new(client(cli.kubeconfig.as_ref()).await?, cli.node_name);
    log::info!(
        "node {}: applying the profile named by label {} of {}",
        api.name(),
        config.labels.profile,
        config.file.display()
    );
    agent::run(api, config, shutdown()).await?;
    Ok(())
}

fn main() -> ExitCode {
    init_log();
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|rt| rt.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let text = mdevkit::error::chain(e.as_ref());
            let _ = writeln!(std::io::stderr().lock(), "Error: {text}");
            ExitCode::FAILURE
        }
    }
}
