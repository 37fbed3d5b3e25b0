//! Fleet mode: `mdevkit-agent`, one per Kubernetes node. It applies the desired-state
//! profile named by a label on its Node, reports through a state label and Events, and
//! repairs drift. The Kubernetes client (and its async runtime and TLS) lives only here,
//! never in the host tools.
//!
//! [`labels`] validates label keys, [`node`] talks to the API server, [`config_watch`]
//! notices file changes, [`reconcile`] applies on the host through the library's
//! desired-state session, [`agent`] is the loop.

pub mod agent;
pub mod config_watch;
pub mod labels;
pub mod node;
pub mod reconcile;
