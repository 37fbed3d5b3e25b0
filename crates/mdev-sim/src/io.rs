//! What reading and writing each kind of sysfs file does: the show/store functions of the kernel.

use crate::kernel::Kernel;
use crate::parse::{kstrtoul, Errno};
use crate::profile::WriteRule;
use crate::tree::{Ino, Node, Role};

impl Kernel {
    fn role_of(&self, ino: Ino) -> Result<Role, Errno> {
        match self.tree.get(ino).map(|e| &e.node) {
            Some(Node::File { role, .. }) => Ok(role.clone()),
            Some(Node::Dir(_)) => Err(Errno::EISDIR),
            Some(Node::Link(_)) => Err(Errno::EINVAL),
            None => Err(Errno::ENOENT),
        }
    }

    /// The content of a file as the kernel's show function formats it.
    pub fn read_file(&mut self, ino: Ino) -> Result<Vec<u8>, Errno> {
        let role = self.role_of(ino)?;
        if let Some(errno) = self.take_fault(ino) {
            return Err(errno);
        }
        let text = match role {
            Role::Static(text) => text,
            Role::AvailableInstances { parent, ty } => {
                format!("{}\n", self.available(&parent, &ty).0)
            }
            // Write-only attributes have no show function.
            Role::Create { .. } | Role::Remove(_) => return Err(Errno::EACCES),
            Role::Attr { uuid, name } => {
                let value = self.attr_value(&uuid, &name).ok_or(Errno::ENODEV)?;
                format!("{value}\n")
            }
            Role::Ap { uuid, attr } => {
                let m = self.matrix(&uuid).ok_or(Errno::ENODEV)?;
                crate::ap::show(attr, m)
            }
            Role::ApMask { domains } => self.ap_mask_show(domains).ok_or(Errno::ENODEV)?,
            Role::NvidiaVf(file) => self.vf_show(&file)?,
            Role::Control => crate::control::HELP.to_string(),
            Role::LastError => {
                if self.last_error.is_empty() {
                    String::new()
                } else {
                    format!("{}\n", self.last_error)
                }
            }
            Role::Hooks => self
                .hook_runs
                .iter()
                .map(|r| {
                    format!(
                        "parent={} status={}\n{}{}",
                        r.parent,
                        r.status
                            .map_or_else(|| "signal".to_string(), |s| s.to_string()),
                        r.stdout,
                        r.stderr
                    )
                })
                .collect(),
        };
        Ok(text.into_bytes())
    }

    /// A write, handled as the kernel's store function would handle the same bytes; the number
    /// of bytes it took, which is less than offered only under a `short` rule.
    pub fn write_file(&mut self, ino: Ino, data: &[u8]) -> Result<usize, Errno> {
        let role = self.role_of(ino)?;
        if let Some(errno) = self.take_fault(ino).or_else(|| self.take_write_fault(ino)) {
            return Err(errno);
        }
        // A store function that consumes only part of the buffer: it acts on those bytes, and
        // write(2) returns their count. Taking none, it has acted on nothing.
        let taken = self
            .take_short_write(ino)
            .map_or(data.len(), |limit| limit.min(data.len()));
        let data = data.get(..taken).unwrap_or(data);
        if taken == 0 {
            return Ok(0);
        }
        self.store(role, data).map(|()| taken)
    }

    fn store(&mut self, role: Role, data: &[u8]) -> Result<(), Errno> {
        match role {
            Role::Create { parent, ty } => self.create(&parent, &ty, data).map(|_| ()),
            Role::Remove(uuid) => self.remove_write(&uuid, data),
            Role::Attr { uuid, name } => {
                let rule = self.attr_rule(&uuid, &name).ok_or(Errno::ENODEV)?;
                let value = attr_store(rule, data)?;
                self.set_attr(&uuid, &name, value);
                Ok(())
            }
            Role::Ap { uuid, attr } => self.ap_store(&uuid, attr, data),
            Role::ApMask { domains } => self.ap_mask_store(domains, data),
            Role::NvidiaVf(file) => self.vf_store(&file, data),
            Role::Control => {
                let text = String::from_utf8_lossy(data).into_owned();
                match crate::control::apply(self, &text) {
                    Ok(()) => {
                        self.last_error.clear();
                        Ok(())
                    }
                    Err(e) => {
                        self.last_error = e.to_string();
                        Err(Errno::EINVAL)
                    }
                }
            }
            Role::Static(_) | Role::AvailableInstances { .. } | Role::LastError | Role::Hooks => {
                Err(Errno::EACCES)
            }
        }
    }
}

/// A vendor attribute's store function for one of the profile's write rules.
fn attr_store(rule: WriteRule, data: &[u8]) -> Result<String, Errno> {
    let text = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
    match rule {
        WriteRule::Any => Ok(text.strip_suffix('\n').unwrap_or(text).to_string()),
        WriteRule::NewlineRequired => text
            .strip_suffix('\n')
            .map(str::to_string)
            .ok_or(Errno::EINVAL),
        WriteRule::Number => kstrtoul(data).map(|n| n.to_string()),
    }
}
