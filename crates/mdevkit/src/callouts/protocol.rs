//! The callout protocol's vocabulary: events, actions, states, the argv layout and the
//! capability documents exchanged in `get capabilities` (spec §6.2, §6.3).

use std::fmt;
use std::sync::LazyLock;

use serde::Deserialize;

/// The protocol version mdevkit speaks and announces in `get capabilities`.
pub const VERSION: u64 = 2;

/// Declares one kind of protocol word once: each variant with its spelling and the
/// protocol version that introduced it. Everything else (argv, the `provides` document,
/// the legacy capability set, recognising a script's words) derives from this list.
macro_rules! vocabulary {
    (
        $(#[$doc:meta])*
        $name:ident {
            $($(#[$vdoc:meta])* $variant:ident = $text:literal since $since:literal,)+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every word, in the order `get capabilities` announces them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The word as written on a callout's command line and in capability documents.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The protocol version that introduced the word; a legacy (unversioned)
            /// script is assumed to handle exactly the version-1 words.
            pub fn since_version(self) -> u64 {
                match self {
                    $($name::$variant => $since,)+
                }
            }

            /// The word a script spelled, or `None` when this version does not know it.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|w| w.as_str() == text)
            }

            /// Upstream's capitalised name (its Rust variant name), used in "does not
            /// support" errors.
            pub fn title(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// When a callout runs relative to the command's primary step.
    Event {
        Pre = "pre" since 1,
        Post = "post" since 1,
        Notify = "notify" since 1,
        Get = "get" since 1,
        Live = "live" since 2,
    }
}

vocabulary! {
    /// What the command is doing.
    Action {
        Start = "start" since 1,
        Stop = "stop" since 1,
        Define = "define" since 1,
        Undefine = "undefine" since 1,
        Modify = "modify" since 1,
        Attributes = "attributes" since 1,
        Capabilities = "capabilities" since 2,
    }
}

vocabulary! {
    /// The outcome passed to `post` and `notify`.
    State {
        None = "none" since 1,
        Success = "success" since 1,
        Failure = "failure" since 1,
    }
}

/// The words of one kind as a JSON array of strings (the words need no escaping).
fn json_words(words: impl Iterator<Item = &'static str>) -> String {
    let quoted: Vec<String> = words.map(|w| format!("\"{w}\"")).collect();
    format!("[{}]", quoted.join(","))
}

/// What mdevkit offers scripts on stdin of `get capabilities`: every word of protocol
/// [`VERSION`], compact, without a newline.
pub static PROVIDES: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"{{"provides":{{"version":{VERSION},"actions":{},"events":{}}}}}"#,
        json_words(Action::ALL.iter().map(|a| a.as_str())),
        json_words(Event::ALL.iter().map(|e| e.as_str())),
    )
});

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
    /// What a legacy (unversioned) script is assumed to handle: the version-1 words.
    pub fn legacy() -> Self {
        Supports {
            version: 1,
            actions: Action::ALL
                .iter()
                .filter(|a| a.since_version() == 1)
                .map(|a| a.as_str().to_owned())
                .collect(),
            events: Event::ALL
                .iter()
                .filter(|e| e.since_version() == 1)
                .map(|e| e.as_str().to_owned())
                .collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provides_is_upstreams_version_2_document() {
        // The bytes upstream mdevctl 1.4 writes (spec §6.3).
        assert_eq!(
            PROVIDES.as_str(),
            r#"{"provides":{"version":2,"actions":["start","stop","define","undefine","modify","attributes","capabilities"],"events":["pre","post","notify","get","live"]}}"#
        );
    }

    #[test]
    fn legacy_scripts_get_the_version_1_words() {
        let legacy = Supports::legacy();
        assert_eq!(legacy.version, 1);
        assert_eq!(
            legacy.actions,
            [
                "start",
                "stop",
                "define",
                "undefine",
                "modify",
                "attributes"
            ]
        );
        assert_eq!(legacy.events, ["pre", "post", "notify", "get"]);
        assert!(!legacy.has_action(Action::Capabilities));
        assert!(!legacy.has_event(Event::Live));
    }

    #[test]
    fn words_parse_back_and_unknown_words_do_not() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(*a));
        }
        for e in Event::ALL {
            assert_eq!(Event::parse(e.as_str()), Some(*e));
        }
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(*s));
        }
        assert_eq!(Action::parse("Start"), None);
        assert_eq!(Event::parse("teleport"), None);
    }

    #[test]
    fn titles_are_upstreams_capitalised_names() {
        assert_eq!(Action::Capabilities.title(), "Capabilities");
        assert_eq!(Event::Live.title(), "Live");
    }
}
