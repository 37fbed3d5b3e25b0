//! The agent's own Node through the Kubernetes API: read its profile label, follow it with
//! a watch (resumed from the last resource version, re-read when the server has expired
//! it or gone away), set the state label with a merge patch, and record Events on it.
//! These four calls (get, watch, patch nodes; create events) are all the agent's RBAC
//! grants.

use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Event, EventSource, Node, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use crate::labels::{LabelKey, LabelKeys, ProfileState};

/// Node events go to this namespace, as the kubelet's do (a Node has none).
const EVENT_NAMESPACE: &str = "default";
/// Names the agent as the source of its Events and as the field manager of its patches.
pub const COMPONENT: &str = "mdevkit-agent";
/// The server ends a watch after this many seconds; the agent then resumes it.
const WATCH_TIMEOUT: u32 = 290;
/// Retries after an API error start here and double up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The kind of an Event: `Normal` for success, `Warning` for a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// One node's API objects.
#[derive(Debug, Clone)]
pub struct NodeApi {
    nodes: Api<Node>,
    events: Api<Event>,
    name: String,
}

impl NodeApi {
    pub fn new(client: Client, name: String) -> Self {
        NodeApi {
            nodes: Api::all(client.clone()),
            events: Api::namespaced(client, EVENT_NAMESPACE),
            name,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the state label (a JSON merge patch of the node's labels).
    pub async fn set_state(&self, key: &LabelKey, state: ProfileState) -> kube::Result<()> {
        let patch = serde_json::json!({
            "metadata": {"labels": {key.as_str(): state.as_str()}}
        });
        self.nodes
            .patch(
                &self.name,
                &PatchParams {
                    field_manager: Some(COMPONENT.into()),
                    ..PatchParams::default()
                },
                &Patch::Merge(&patch),
            )
            .await?;
        Ok(())
    }

    /// Records an Event on the node (core/v1, in the `default` namespace, as the
    /// kubelet's node events are).
    pub async fn event(&self, kind: EventType, reason: &str, message: &str) -> kube::Result<()> {
        // The Node's uid, so that `kubectl describe node` lists the Event; without it
        // (the Node unreadable just now) the Event still names the Node.
        let uid = match self.nodes.get(&self.name).await {
            Ok(node) => node.metadata.uid,
            Err(e) => {
                log::warn!("cannot read node {}: {e}", self.name);
                None
            }
        };
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}.", self.name)),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(self.name.clone()),
                uid,
                ..ObjectReference::default()
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(
                match kind {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            source: Some(EventSource {
                component: Some(COMPONENT.into()),
                host: Some(self.name.clone()),
            }),
            reporting_component: Some(COMPONENT.into()),
            reporting_instance: Some(self.name.clone()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Event::default()
        };
        self.events.create(&PostParams::default(), &event).await?;
        Ok(())
    }

    /// Follows the profile label forever, publishing each value that differs from the last
    /// (`None`: the label is absent). Our own state patches wake the watch too; they do
    /// not change the profile label and so publish nothing.
    pub async fn follow_label(&self, keys: LabelKeys, tx: watch::Sender<Option<Option<String>>>) {
        let publish = |node: &Node| {
            let value = node.labels().get(keys.profile.as_str()).cloned();
            tx.send_if_modified(|cur| {
                let changed = cur.as_ref() != Some(&value);
                *cur = Some(value);
                changed
            });
        };
        let mut retry = FIRST_RETRY;
        loop {
            let node = match self.nodes.get(&self.name).await {
                Ok(n) => n,
                Err(e) => {
                    log::warn!("cannot read node {}: {e}", self.name);
                    retry = backoff(retry).await;
                    continue;
                }
            };
            publish(&node);
            let mut version = node.resource_version().unwrap_or_default();
            // Resume the watch from `version` until the server says it has expired it,
            // or cannot be reached; then read the node again.
            'watching: loop {
                let params = WatchParams::default()
                    .fields(&format!("metadata.name={}", self.name))
                    .timeout(WATCH_TIMEOUT);
                let stream = match self.nodes.watch(&params, &version).await {
                    Ok(s) => s,
                    Err(e) => {
                        log::warn!("cannot watch node {}: {e}", self.name);
                        retry = backoff(retry).await;
                        break 'watching;
                    }
                };
                let mut stream = std::pin::pin!(stream);
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(WatchEvent::Added(n) | WatchEvent::Modified(n)) => {
                            retry = FIRST_RETRY;
                            version = n.resource_version().unwrap_or(version);
                            publish(&n);
                        }
                        Ok(WatchEvent::Bookmark(b)) => version = b.metadata.resource_version,
                        Ok(WatchEvent::Deleted(_)) => {
                            log::warn!("node {} was deleted", self.name);
                        }
                        Ok(WatchEvent::Error(status)) => {
                            // 410 Gone: the version is too old; anything else: start over too.
                            if status.code != 410 {
                                log::warn!("watch of node {}: {}", self.name, status.message);
                                retry = backoff(retry).await;
                            }
                            break 'watching;
                        }
                        Err(e) => {
                            log::warn!("watch of node {} broke: {e}", self.name);
                            retry = backoff(retry).await;
                            continue 'watching;
                        }
                    }
                }
                // The server ended the watch (its timeout): resume from `version`.
            }
        }
    }
}

/// Waits `retry` before the next attempt and returns the one after. The only timed wait
/// in the agent: nothing announces that an API server is reachable again.
async fn backoff(retry: Duration) -> Duration {
    tokio::time::sleep(retry).await;
    retry.saturating_mul(2).min(MAX_RETRY)
}
