//! The callout protocol's vocabulary: events, actions, states, the argv layout and the
//! capability documents exchanged in `get capabilities` (spec §6.2, §6.3).

use std::fmt;

use serde::Deserialize;

/// When a callout runs relative to the command's primary step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Pre,
    Post,
    Live,
    Notify,
    Get,
}

/// What the command is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Define,
    Undefine,
    Modify,
    Attributes,
    Capabilities,
}

/// The outcome passed to `post` and `notify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    None,
    Success,
    Failure,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Pre => "pre",
            Event::Post => "post",
            Event::Live => "live",
            Event::Notify => "notify",
            Event::Get => "get",
        }
    }

    /// Upstream's capitalised name, used in "does not support" errors.
    pub fn title(self) -> &'static str {
        match self {
            Event::Pre => "Pre",
            Event::Post => "Post",
            Event::Live => "Live",
            Event::Notify => "Notify",
            Event::Get => "Get",
        }
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Define => "define",
            Action::Undefine => "undefine",
            Action::Modify => "modify",
            Action::Attributes => "attributes",
            Action::Capabilities => "capabilities",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Action::Start => "Start",
            Action::Stop => "Stop",
            Action::Define => "Define",
            Action::Undefine => "Undefine",
            Action::Modify => "Modify",
            Action::Attributes => "Attributes",
            Action::Capabilities => "Capabilities",
        }
    }
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::None => "none",
            State::Success => "success",
            State::Failure => "failure",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What mdevkit offers scripts on stdin of `get capabilities` (protocol version 2).
pub const PROVIDES: &str = r#"{"provides":{"version":2,"actions":["start","stop","define","undefine","modify","attributes","capabilities"],"events":["pre","post","notify","get","live"]}}"#;

/// A versioned script's answer to `get capabilities`.
#[derive(Debug, Clone, Deserialize)]
pub struct CapabilitiesReply {
    pub supports: Supports,
}

/// The actions and events a versioned script declares; enforced on every later call.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Supports {
    pub version: u64,
    pub actions: Vec<String>,
    pub events: Vec<String>,
}

impl Supports {
    /// What a legacy (unversioned) script is assumed to handle.
    pub fn legacy() -> Self {
        Supports {
            version: 1,
            actions: [
                "start",
                "stop",
                "define",
                "undefine",
                "modify",
                "attributes",
            ]
            .map(String::from)
            .to_vec(),
            events: ["pre", "post", "notify", "get"].map(String::from).to_vec(),
        }
    }

    pub fn has_action(&self, a: Action) -> bool {
        self.actions.iter().any(|x| x == a.as_str())
    }

    pub fn has_event(&self, e: Event) -> bool {
        self.events.iter().any(|x| x == e.as_str())
    }
}

/// Identifies the device a callout is about: the `-t`, `-u` and `-p` arguments.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub uuid: &'a crate::names::Uuid,
    pub parent: &'a crate::names::ParentName,
    pub mdev_type: &'a crate::names::TypeName,
}

/// `-t <type> -e <event> -a <action> -s <state> -u <uuid> -p <parent>`, in that order.
pub fn argv(subject: &Subject<'_>, event: Event, action: Action, state: State) -> Vec<String> {
    vec![
        "-t".into(),
        subject.mdev_type.to_string(),
        "-e".into(),
        event.as_str().into(),
        "-a".into(),
        action.as_str().into(),
        "-s".into(),
        state.as_str().into(),
        "-u".into(),
        subject.uuid.hyphenated(),
        "-p".into(),
        subject.parent.to_string(),
    ]
}
