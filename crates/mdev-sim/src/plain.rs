//! `mdev-sim plain`: the same tree written as ordinary files and symlinks, without semantics.

use std::path::{Path, PathBuf};

use crate::kernel::Kernel;
use crate::profile::Profile;
use crate::tree::{Node, Role};

#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}")]
pub struct PlainError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Writes the profile's initial sysfs tree under `dir` (which may exist). Files hold what the
/// simulator would show; write-only files are empty. The simulator's control files are left out.
pub fn write_plain_tree(profile: &Profile, dir: &Path) -> Result<(), PlainError> {
    let mut host = Kernel::new(profile);
    let entries: Vec<(String, Node)> = host
        .tree
        .walk()
        .into_iter()
        .filter(|(path, _)| !path.starts_with("mdev-sim"))
        .map(|(path, node)| (path, node.clone()))
        .collect();
    let at = |path: &str, source| PlainError {
        path: dir.join(path),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| at("", e))?;
    for (path, node) in entries {
        let target = dir.join(&path);
        match node {
            Node::Dir(_) => std::fs::create_dir_all(&target).map_err(|e| at(&path, e))?,
            Node::Link(to) => {
                if target.symlink_metadata().is_ok() {
                    std::fs::remove_file(&target).map_err(|e| at(&path, e))?;
                }
                std::os::unix::fs::symlink(&to, &target).map_err(|e| at(&path, e))?;
            }
            Node::File { role, .. } => {
                let content = match role {
                    Role::Create { .. } | Role::Remove(_) => Vec::new(),
                    _ => {
                        let ino = host.tree.resolve(&path);
                        ino.and_then(|ino| host.read_file(ino).ok())
                            .unwrap_or_default()
                    }
                };
                std::fs::write(&target, content).map_err(|e| at(&path, e))?;
            }
        }
    }
    Ok(())
}
