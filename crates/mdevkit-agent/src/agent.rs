//! The agent's loop: wakes on a change of the node's profile label, a change of the
//! desired-state file, or the re-check period; applies the profile when the label or the
//! file changed (state label `pending`, then `success` or `failed`, and an Event), and on
//! the period checks the host like `mdevkit assert`, re-applying on drift.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use crate::labels::{LabelKeys, ProfileState};
use crate::node::{EventType, NodeApi};
use crate::reconcile::{FileSnapshot, HostSetup, Outcome};

/// What the agent runs with.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub file: PathBuf,
    pub labels: LabelKeys,
    /// How often the host is checked against the applied profile.
    pub period: Duration,
    pub host: HostSetup,
}

/// The agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Watch(#[from] crate::config_watch::WatchError),
}

/// What was last attempted, and how it ended.
#[derive(Debug)]
struct Attempt {
    profile: String,
    file: Option<FileSnapshot>,
    outcome: Outcome,
}

/// Why the loop woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    Label,
    File,
    Period,
}

/// Runs until `shutdown` completes (SIGTERM in the binary).
pub async fn run(
    api: NodeApi,
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let mut file_changes = crate::config_watch::watch(&config.file)?;
    let (tx, mut labels) = watch::channel(None);
    let follower = {
        let api = api.clone();
        let keys = config.labels.clone();
        tokio::spawn(async move { api.follow_label(keys, tx).await })
    };
    let mut period = tokio::time::interval(config.period);
    period.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick completes at once; the label decides the first apply.
    period.tick().await;
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last: Option<Attempt> = None;
    loop {
        let wake = tokio::select! {
            changed = labels.changed() => {
                if changed.is_err() {
                    break;
                }
                Wake::Label
            }
            Some(()) = file_changes.recv() => Wake::File,
            _ = period.tick() => Wake::Period,
            () = &mut shutdown => break,
        };
        // `None` until the node was first read; `Some(None)` when it has no label.
        let Some(Some(profile)) = labels.borrow_and_update().clone() else {
            continue;
        };
        let path = config.file.clone();
        let file = tokio::task::spawn_blocking(move || FileSnapshot::read(path))
            .await
            .ok()
            .and_then(Result::ok);
        let same = last
            .as_ref()
            .is_some_and(|a| a.profile == profile && a.file == file);
        if !same {
            last = Some(apply(&api, &config, &profile, file, Reason::Changed).await);
            continue;
        }
        if wake != Wake::Period {
            continue;
        }
        let Some(attempt) = last.as_mut() else {
            continue;
        };
        match &attempt.outcome {
            // The same file and label cannot validate now: wait for a change of either.
            Outcome::Invalid { .. } => {}
            Outcome::Failed { .. } => {
                let retry = apply(&api, &config, &profile, file, Reason::Retry).await;
                *attempt = retry;
            }
            Outcome::Applied { .. } => {
                if let Some(f) = file.as_ref() {
                    if drifted(&config.host, f, &profile).await {
                        *attempt = apply(&api, &config, &profile, file, Reason::Drift).await;
                    }
                }
            }
        }
    }
    follower.abort();
    Ok(())
}

/// Why an apply runs; named in the log and the Event's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Changed,
    Retry,
    Drift,
}

async fn drifted(host: &HostSetup, file: &FileSnapshot, profile: &str) -> bool {
    let (host, file, name) = (host.clone(), file.clone(), profile.to_owned());
    let result = tokio::task::spawn_blocking(move || host.drift(&file, &name)).await;
    match result {
        Ok(Ok(changes)) if changes.is_empty() => false,
        Ok(Ok(changes)) => {
            log::warn!(
                "the host drifted from profile '{profile}':\n{}",
                changes.join("\n")
            );
            true
        }
        Ok(Err(reason)) => {
            log::warn!("cannot check profile '{profile}': {reason}");
            true
        }
        Err(e) => {
            log::error!("checking profile '{profile}' did not finish: {e}");
            false
        }
    }
}

/// The first changes, one a line, for an Event's message (kept short: events are for
/// people; the agent logs them all at debug level).
fn listed(changes: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut out: String = changes
        .iter()
        .take(SHOWN)
        .map(|c| format!("\n{c}"))
        .collect();
    if let Some(more) = changes.len().checked_sub(SHOWN).filter(|m| *m > 0) {
        out.push_str(&format!("\n... and {more} more"));
    }
    out
}

/// Applies `profile`, reporting through the state label and an Event.
async fn apply(
    api: &NodeApi,
    config: &AgentConfig,
    profile: &str,
    file: Option<FileSnapshot>,
    reason: Reason,
) -> Attempt {
    log::info!("applying profile '{profile}' ({reason:?})");
    if let Err(e) = api
        .set_state(&config.labels.state, ProfileState::Pending)
        .await
    {
        log::warn!("cannot set {} to pending: {e}", config.labels.state);
    }
    let outcome = match file.clone() {
        None => Outcome::Invalid {
            reason: format!("cannot read {}", config.file.display()),
        },
        Some(f) => {
            let (host, name) = (config.host.clone(), profile.to_owned());
            tokio::task::spawn_blocking(move || host.apply(&f, &name))
                .await
                .unwrap_or_else(|e| Outcome::Failed {
                    reason: format!("apply did not finish: {e}"),
                })
        }
    };
    let (state, kind, event_reason, message) = match &outcome {
        Outcome::Applied { changes } => (
            ProfileState::Success,
            EventType::Normal,
            match reason {
                Reason::Drift => "ProfileRepaired",
                Reason::Changed | Reason::Retry => "ProfileApplied",
            },
            format!(
                "profile '{profile}' applied: {} change(s){}",
                changes.len(),
                listed(changes)
            ),
        ),
        Outcome::Invalid { reason } => (
            ProfileState::Failed,
            EventType::Warning,
            "ProfileInvalid",
            format!("profile '{profile}' not applied, nothing changed: {reason}"),
        ),
        Outcome::Failed { reason } => (
            ProfileState::Failed,
            EventType::Warning,
            "ProfileFailed",
            format!("profile '{profile}' failed: {reason}"),
        ),
    };
    if let Outcome::Applied { changes } = &outcome {
        for c in changes {
            log::debug!("done: {c}");
        }
    }
    match state {
        ProfileState::Failed => log::error!("{message}"),
        _ => log::info!("{message}"),
    }
    // The Event first: whoever sees the final state finds its reason already there.
    if let Err(e) = api.event(kind, event_reason, &message).await {
        log::warn!("cannot record an event on node {}: {e}", api.name());
    }
    if let Err(e) = api.set_state(&config.labels.state, state).await {
        log::warn!(
            "cannot set {} to {}: {e}",
            config.labels.state,
            state.as_str()
        );
    }
    Attempt {
        profile: profile.to_owned(),
        file,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::listed;

    #[test]
    fn event_messages_list_at_most_ten_changes() {
        let changes: Vec<String> = (0..12).map(|i| format!("+ define {i}")).collect();
        let text = listed(&changes);
        assert_eq!(text.lines().filter(|l| l.starts_with('+')).count(), 10);
        assert!(text.ends_with("\n... and 2 more"), "{text}");
        assert_eq!(listed(&changes[..10]).lines().count(), 11);
        assert_eq!(listed(&[]), "");
    }
}
