//! Change events for mediated devices: definitions appearing, changing and going (inotify
//! on the config directories) and devices and parents coming and going (the kernel's
//! uevents), merged into one stream by [`Monitor`]. `mdevkit monitor` prints them.

mod definitions;
mod kobject;

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use rustix::event::{poll, PollFd, PollFlags};
use serde_json::{Map, Value};

use crate::host::Host;
use crate::names::{ParentName, StartMode, TypeName, Uuid};

use definitions::DefinitionWatch;
use kobject::KobjectWatch;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A definition file appeared (or existed, in a snapshot).
    Defined,
    /// A definition file went away.
    Undefined,
    /// A definition file's content changed (type, start mode or attributes).
    Modified,
    /// The kernel created a device (or it existed, in a snapshot).
    Started,
    /// The kernel removed a device.
    Stopped,
    /// A parent registered with the mdev core (`MDEV_STATE=registered`).
    ParentAdded,
    /// A parent unregistered (`MDEV_STATE=unregistered`).
    ParentRemoved,
    /// `MDEV_STATE=registered` for a parent already known (listed before its types
    /// appeared, or registering again): its types may differ.
    TypesChanged,
    /// Events were lost (inotify's queue or the netlink buffer overflowed); the events
    /// after it describe what changed meanwhile, as far as the state shows it.
    Overflow,
    /// The watches are in place (and the snapshot, if asked for, is complete).
    Ready,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Defined => "defined",
            EventKind::Undefined => "undefined",
            EventKind::Modified => "modified",
            EventKind::Started => "started",
            EventKind::Stopped => "stopped",
            EventKind::ParentAdded => "parent-added",
            EventKind::ParentRemoved => "parent-removed",
            EventKind::TypesChanged => "types-changed",
            EventKind::Overflow => "overflow",
            EventKind::Ready => "ready",
        }
    }
}

/// Which stream overflowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// inotify's queue (`IN_Q_OVERFLOW`): definition events.
    Inotify,
    /// The netlink socket's buffer (`ENOBUFS`): uevents.
    Uevent,
}

impl Lost {
    pub fn as_str(self) -> &'static str {
        match self {
            Lost::Inotify => "inotify",
            Lost::Uevent => "uevent",
        }
    }
}

/// One event. Fields that do not apply to its kind are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub uuid: Option<Uuid>,
    pub parent: Option<ParentName>,
    pub mdev_type: Option<TypeName>,
    /// The definition's start mode (definition events).
    pub start: Option<StartMode>,
    /// Part of the initial snapshot rather than a change.
    pub snapshot: bool,
    /// For [`EventKind::Overflow`].
    pub lost: Option<Lost>,
}

impl Event {
    fn new(kind: EventKind) -> Event {
        Event {
            kind,
            uuid: None,
            parent: None,
            mdev_type: None,
            start: None,
            snapshot: false,
            lost: None,
        }
    }

    fn device(kind: EventKind, uuid: Uuid, parent: ParentName, ty: Option<TypeName>) -> Event {
        Event {
            uuid: Some(uuid),
            parent: Some(parent),
            mdev_type: ty,
            ..Event::new(kind)
        }
    }

    fn parent(kind: EventKind, parent: ParentName) -> Event {
        Event {
            parent: Some(parent),
            ..Event::new(kind)
        }
    }

    fn overflow(lost: Lost) -> Event {
        Event {
            lost: Some(lost),
            ..Event::new(EventKind::Overflow)
        }
    }

    /// One line of text: the kind, then what is known of uuid, parent, type and start mode.
    pub fn to_text(&self) -> String {
        let mut words = vec![self.kind.as_str().to_string()];
        if let Some(u) = &self.uuid {
            words.push(u.hyphenated());
        }
        if let Some(p) = &self.parent {
            words.push(p.as_str().to_string());
        }
        if let Some(t) = &self.mdev_type {
            words.push(t.as_str().to_string());
        }
        if let Some(s) = self.start {
            words.push(s.as_str().to_string());
        }
        if let Some(l) = self.lost {
            words.push(format!("{}: re-read the state", l.as_str()));
        }
        if self.snapshot {
            words.push("(snapshot)".into());
        }
        words.join(" ")
    }

    /// One line of JSON with every key of the schema (`docs/events.md`), in a fixed order;
    /// what does not apply is `null`.
    pub fn to_json(&self) -> String {
        let opt = |s: Option<String>| s.map_or(Value::Null, Value::String);
        let mut m = Map::new();
        m.insert("event".into(), self.kind.as_str().into());
        m.insert("uuid".into(), opt(self.uuid.map(|u| u.hyphenated())));
        m.insert(
            "parent".into(),
            opt(self.parent.as_ref().map(|p| p.as_str().to_string())),
        );
        m.insert(
            "type".into(),
            opt(self.mdev_type.as_ref().map(|t| t.as_str().to_string())),
        );
        m.insert(
            "start".into(),
            opt(self.start.map(|s| s.as_str().to_string())),
        );
        m.insert("snapshot".into(), self.snapshot.into());
        m.insert(
            "lost".into(),
            opt(self.lost.map(|l| l.as_str().to_string())),
        );
        Value::Object(m).to_string()
    }
}

/// Where the stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// Only changes after the watches are in place.
    #[default]
    SinceNow,
    /// First the current state as events marked `snapshot` (definitions, parents, running
    /// devices), then the changes.
    Snapshot,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct MonitorOptions {
    pub start: Start,
    /// The uevent socket's receive buffer in bytes (`SO_RCVBUF`; the kernel doubles it and
    /// caps it at `net.core.rmem_max`); `None` keeps the library's default.
    pub receive_buffer: Option<usize>,
}

/// Why the monitor cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("cannot set up inotify")]
    Inotify {
        #[source]
        source: io::Error,
    },
    #[error("cannot watch {}", path.display())]
    Watch {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read inotify events")]
    ReadInotify {
        #[source]
        source: io::Error,
    },
    #[error("cannot open the kernel's uevent socket")]
    UeventSocket {
        #[source]
        source: io::Error,
    },
    #[error("cannot receive uevents")]
    ReceiveUevent {
        #[source]
        source: io::Error,
    },
    #[error("cannot wait for events")]
    Poll {
        #[source]
        source: io::Error,
    },
}

/// The merged event stream. Watches are set up before the state is read, so nothing
/// between the two is missed; what the snapshot already shows is not repeated.
#[derive(Debug)]
pub struct Monitor {
    definitions: DefinitionWatch,
    kobjects: KobjectWatch,
    queue: VecDeque<Event>,
}

impl Monitor {
    pub fn open(host: Host, options: MonitorOptions) -> Result<Monitor, MonitorError> {
        let kobjects = KobjectWatch::open(host.clone(), options.receive_buffer)?;
        let definitions = DefinitionWatch::open(host)?;
        let mut m = Monitor {
            definitions,
            kobjects,
            queue: VecDeque::new(),
        };
        let snapshot = options.start == Start::Snapshot;
        let mut initial = Vec::new();
        m.definitions.resync(&mut initial);
        m.kobjects.resync(&mut initial);
        if snapshot {
            for mut e in initial {
                e.snapshot = true;
                m.queue.push_back(e);
            }
        }
        m.queue.push_back(Event::new(EventKind::Ready));
        Ok(m)
    }

    /// Whether an event is ready without waiting (a caller may flush its output when not).
    pub fn has_pending(&self) -> bool {
        !self.queue.is_empty()
    }

    /// The next event, waiting for it without a timeout. With `hangup`, returns `None` as
    /// soon as that descriptor reports an error or hang-up (the consumer's pipe closed),
    /// even while nothing happens.
    pub fn next(&mut self, hangup: Option<BorrowedFd<'_>>) -> Result<Option<Event>, MonitorError> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Ok(Some(e));
            }
            let mut fds = vec![
                PollFd::new(&self.definitions, PollFlags::IN),
                PollFd::new(&self.kobjects, PollFlags::IN),
            ];
            if let Some(h) = &hangup {
                fds.push(PollFd::from_borrowed_fd(*h, PollFlags::empty()));
            }
            match poll(&mut fds, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(MonitorError::Poll { source: e.into() }),
            }
            let ready = |i: usize| fds.get(i).map_or(PollFlags::empty(), PollFd::revents);
            let (inotify, uevents, hung) = (ready(0), ready(1), ready(2));
            if !hung.is_empty() {
                return Ok(None);
            }
            let mut out = Vec::new();
            if !inotify.is_empty() {
                self.definitions.read(&mut out)?;
            }
            if !uevents.is_empty() {
                self.kobjects.read(&mut out)?;
            }
            self.queue.extend(out);
        }
    }
}

impl AsFd for DefinitionWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

impl AsFd for KobjectWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}
