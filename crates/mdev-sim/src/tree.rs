//! The inode tree the file system serves: directories, symlinks and files whose meaning is a role.

use std::collections::{BTreeMap, HashMap};

use crate::ap::ApAttr;
use crate::parse::Uuid;

pub type Ino = u64;
pub const ROOT: Ino = 1;

/// What a file stands for; its content is computed from the host's state when it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Fixed text (already with its trailing newline).
    Static(String),
    AvailableInstances {
        parent: String,
        ty: String,
    },
    Create {
        parent: String,
        ty: String,
    },
    Remove(Uuid),
    /// A vendor attribute from the profile.
    Attr {
        uuid: Uuid,
        name: String,
    },
    Ap {
        uuid: Uuid,
        attr: ApAttr,
    },
    ApMask {
        domains: bool,
    },
    /// A file of NVIDIA's vendor-specific VFIO tree (`sriov_numvfs`, a VF's `nvidia/`).
    NvidiaVf(crate::nvidia_vf::VfFile),
    /// `mdev-sim/control`: line commands.
    Control,
    /// `mdev-sim/last_error`: why the last control command failed.
    LastError,
    /// `mdev-sim/hooks`: what the parent-add hooks did.
    Hooks,
}

#[derive(Debug, Clone)]
pub enum Node {
    Dir(BTreeMap<String, Ino>),
    File { mode: u16, role: Role },
    Link(String),
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub parent: Ino,
    pub name: String,
    pub node: Node,
}

/// Inode numbers are never reused, so a kernel-cached inode of a removed file cannot alias a
/// new one; the map only holds what exists.
#[derive(Debug)]
pub struct Tree {
    entries: HashMap<Ino, Entry>,
    next: Ino,
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

impl Tree {
    pub fn new() -> Tree {
        let mut entries = HashMap::new();
        entries.insert(
            ROOT,
            Entry {
                parent: ROOT,
                name: String::new(),
                node: Node::Dir(BTreeMap::new()),
            },
        );
        Tree {
            entries,
            next: ROOT + 1,
        }
    }

    pub fn get(&self, ino: Ino) -> Option<&Entry> {
        self.entries.get(&ino)
    }

    pub fn lookup(&self, dir: Ino, name: &str) -> Option<Ino> {
        match &self.entries.get(&dir)?.node {
            Node::Dir(children) => children.get(name).copied(),
            _ => None,
        }
    }

    /// The inode at a root-relative path, without following symlinks.
    pub fn resolve(&self, path: &str) -> Option<Ino> {
        path.split('/')
            .filter(|p| !p.is_empty())
            .try_fold(ROOT, |dir, name| self.lookup(dir, name))
    }

    /// The inode at a root-relative path, following symlinks as the VFS would.
    pub fn resolve_follow(&self, path: &str) -> Option<Ino> {
        let mut pending: Vec<String> = path
            .split('/')
            .filter(|p| !p.is_empty())
            .rev()
            .map(str::to_string)
            .collect();
        let mut done: Vec<Ino> = Vec::new();
        let mut links = 0;
        while let Some(name) = pending.pop() {
            let dir = done.last().copied().unwrap_or(ROOT);
            match name.as_str() {
                "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            let ino = self.lookup(dir, &name)?;
            if let Node::Link(target) = &self.entries.get(&ino)?.node {
                links += 1;
                if links > 40 {
                    return None;
                }
                pending.extend(
                    target
                        .split('/')
                        .filter(|p| !p.is_empty())
                        .rev()
                        .map(str::to_string),
                );
            } else {
                done.push(ino);
            }
        }
        Some(done.last().copied().unwrap_or(ROOT))
    }

    pub fn children(&self, dir: Ino) -> Vec<(String, Ino)> {
        match self.entries.get(&dir).map(|e| &e.node) {
            Some(Node::Dir(children)) => children.iter().map(|(n, &i)| (n.clone(), i)).collect(),
            _ => Vec::new(),
        }
    }

    /// Creates every missing directory of a root-relative path and returns the last one.
    pub fn mkdir_p(&mut self, path: &str) -> Ino {
        let mut dir = ROOT;
        for name in path.split('/').filter(|p| !p.is_empty()) {
            dir = match self.lookup(dir, name) {
                Some(ino) => ino,
                None => self.insert(dir, name, Node::Dir(BTreeMap::new())),
            };
        }
        dir
    }

    /// Adds (or replaces) an entry at a root-relative path, making its directories.
    pub fn put(&mut self, path: &str, node: Node) -> Ino {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let dir = self.mkdir_p(dir);
        if let Some(old) = self.lookup(dir, name) {
            self.remove(old);
        }
        self.insert(dir, name, node)
    }

    pub fn put_file(&mut self, path: &str, mode: u16, role: Role) -> Ino {
        self.put(path, Node::File { mode, role })
    }

    /// A symlink at `path` pointing at the root-relative `target`, written relative to the
    /// link's directory so that canonicalisation works wherever the tree is mounted.
    pub fn put_link(&mut self, path: &str, target: &str) -> Ino {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        self.put(path, Node::Link(relative(dir, target)))
    }

    fn insert(&mut self, dir: Ino, name: &str, node: Node) -> Ino {
        let ino = self.next;
        self.next += 1;
        self.entries.insert(
            ino,
            Entry {
                parent: dir,
                name: name.to_string(),
                node,
            },
        );
        if let Some(Entry {
            node: Node::Dir(children),
            ..
        }) = self.entries.get_mut(&dir)
        {
            children.insert(name.to_string(), ino);
        }
        ino
    }

    /// Removes an entry and everything below it.
    pub fn remove(&mut self, ino: Ino) {
        if ino == ROOT {
            return;
        }
        let Some(entry) = self.entries.remove(&ino) else {
            return;
        };
        if let Some(Entry {
            node: Node::Dir(children),
            ..
        }) = self.entries.get_mut(&entry.parent)
        {
            children.remove(&entry.name);
        }
        let mut stack = vec![entry];
        while let Some(e) = stack.pop() {
            if let Node::Dir(children) = e.node {
                for child in children.values() {
                    if let Some(c) = self.entries.remove(child) {
                        stack.push(c);
                    }
                }
            }
        }
    }

    pub fn remove_path(&mut self, path: &str) {
        if let Some(ino) = self.resolve(path) {
            self.remove(ino);
        }
    }

    /// Every entry as (root-relative path, node), parents before children.
    pub fn walk(&self) -> Vec<(String, &Node)> {
        let mut out = Vec::new();
        let mut stack = vec![(String::new(), ROOT)];
        while let Some((path, ino)) = stack.pop() {
            let Some(entry) = self.entries.get(&ino) else {
                continue;
            };
            if ino != ROOT {
                out.push((path.clone(), &entry.node));
            }
            if let Node::Dir(children) = &entry.node {
                for (name, &child) in children.iter().rev() {
                    let p = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}/{name}")
                    };
                    stack.push((p, child));
                }
            }
        }
        out
    }
}

/// The relative path from directory `from` to `to` (both root-relative).
pub fn relative(from: &str, to: &str) -> String {
    let from: Vec<&str> = from.split('/').filter(|p| !p.is_empty()).collect();
    let to: Vec<&str> = to.split('/').filter(|p| !p.is_empty()).collect();
    let common = from
        .iter()
        .zip(to.iter())
        .take_while(|(a, b)| a == b)
        .count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(to.iter().skip(common));
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_links() {
        assert_eq!(
            relative("bus/mdev/devices", "devices/virtual/mtty/mtty/u"),
            "../../../devices/virtual/mtty/mtty/u"
        );
        assert_eq!(
            relative(
                "devices/virtual/mtty/mtty/u",
                "devices/virtual/mtty/mtty/mdev_supported_types/mtty-2"
            ),
            "../mdev_supported_types/mtty-2"
        );
    }

    #[test]
    fn follows_links() {
        let mut t = Tree::new();
        let f = t.put_file("devices/p/u/attr", 0o444, Role::Static(String::new()));
        t.put_link("bus/mdev/devices/u", "devices/p/u");
        assert_eq!(t.resolve_follow("bus/mdev/devices/u/attr"), Some(f));
        assert_eq!(t.resolve("bus/mdev/devices/u/attr"), None);
    }

    #[test]
    fn put_and_remove() {
        let mut t = Tree::new();
        t.put_file(
            "devices/virtual/mtty/mtty/x",
            0o444,
            Role::Static("1\n".into()),
        );
        assert!(t.resolve("devices/virtual/mtty/mtty/x").is_some());
        t.remove_path("devices/virtual/mtty/mtty");
        assert!(t.resolve("devices/virtual/mtty/mtty/x").is_none());
        assert!(t.resolve("devices/virtual/mtty").is_some());
    }
}
