//! The mdev backend: parents from `/sys/class/mdev_bus`, devices from `/etc/mdevctl.d` and
//! `/sys/bus/mdev/devices`, and each step run by the mdevctl verb's own operation, so
//! callouts, notifiers and the lock behave exactly as for `mdevctl define/start/...`.

use std::path::PathBuf;

use super::{Backend, BackendError, PlanStep};
use crate::config::JsonStyle;
use crate::desired::plan::{Action, Step};
use crate::desired::selector::parse_pci_id;
use crate::names::ParentName;
use crate::observed::{BackendKind, Observed, ObservedParent, ObservedType, PciIds, Running};
use crate::ops::define::DefineOptions;
use crate::ops::modify::{Change, ModifyOptions, Target};
use crate::ops::start::StartOptions;
use crate::ops::stop::StopOptions;
use crate::ops::undefine::UndefineOptions;
use crate::ops::{self, Context};
use crate::{store, sysfs};

/// Mediated devices through the mdevctl operations.
#[derive(Debug)]
pub struct MdevBackend<'a> {
    ctx: &'a Context,
    /// Where a definition is staged for `define --jsonfile` / `modify --jsonfile`.
    staging: PathBuf,
}

impl<'a> MdevBackend<'a> {
    /// `staging_dir` holds the one-step JSON file the define and modify operations read.
    pub fn new(ctx: &'a Context, staging_dir: &std::path::Path) -> Self {
        MdevBackend {
            ctx,
            staging: staging_dir.join(format!(".staged-{}.json", std::process::id())),
        }
    }

    fn pci_ids(&self, parent: &ParentName) -> Option<PciIds> {
        let host = &self.ctx.host;
        let dir = host.parent_dir(parent);
        let read = |f: &str| {
            host.read_bounded(&dir.join(f), 64)
                .ok()
                .and_then(|b| parse_pci_id(&String::from_utf8_lossy(&b)))
        };
        Some(PciIds {
            vendor: read("vendor")?,
            device: read("device")?,
        })
    }

    fn bound_driver(&self, parent: &ParentName) -> Option<String> {
        let host = &self.ctx.host;
        let target = host
            .read_link(&host.parent_dir(parent).join("driver"))
            .ok()?;
        Some(target.file_name()?.to_str()?.to_owned())
    }

    fn staged(&self, step: &Step) -> Result<PathBuf, BackendError> {
        let text = step
            .config
            .as_ref()
            .map(|c| c.to_json(JsonStyle::Pretty))
            .unwrap_or_default();
        self.ctx
            .host
            .write_atomic(&self.staging, text.as_bytes())
            .map_err(|source| BackendError::Stage {
                uuid: step.uuid,
                path: self.staging.clone(),
                source,
            })?;
        Ok(self.staging.clone())
    }
}

impl Backend for MdevBackend<'_> {
    fn kind(&self) -> BackendKind {
        BackendKind::Mdev
    }

    fn observe(&self, into: &mut Observed) {
        let host = &self.ctx.host;
        let (types, mut skipped) = sysfs::supported::supported_types(host, None);
        // A parent whose `mdev_supported_types` is not there yet is not a problem here:
        // it is observed with unknown types, which the plan reports (and `--wait` awaits).
        skipped.retain(|s| host.exists(&s.path));
        ops::warn_skipped(&skipped);
        // A parent without `mdev_supported_types` is listed, with its types unknown.
        let names = host.read_dir(&host.mdev_bus_dir()).unwrap_or_default();
        for e in names {
            let Some(name) = e.name.to_str().and_then(|n| n.parse::<ParentName>().ok()) else {
                continue;
            };
            let types = types.get(&name).map(|ts| {
                ts.iter()
                    .map(|t| ObservedType {
                        id: t.name.clone(),
                        name: t.pretty_name.clone(),
                        available: t.available_instances,
                    })
                    .collect()
            });
            let parent = ObservedParent {
                backend: BackendKind::Mdev,
                pci: self.pci_ids(&name),
                driver: self.bound_driver(&name),
                types,
                vf: None,
            };
            into.parents.insert(name, parent);
        }
        let scan = store::scan(host, &store::Selection::default());
        for b in &scan.broken {
            log::warn!("{}", crate::error::chain(&b.error));
        }
        for d in scan.into_defs() {
            let dev = into.devices.entry(d.uuid).or_default();
            dev.defined.insert(d.parent, d.config);
        }
        let (active, skipped) = sysfs::active_devices(host, None);
        ops::warn_skipped(&skipped);
        for (uuid, a) in active {
            into.devices.entry(uuid).or_default().active = Some(Running {
                parent: a.parent,
                mdev_type: a.mdev_type,
            });
        }
    }

    fn execute(&self, change: &PlanStep) -> Result<(), BackendError> {
        let PlanStep::Device(step) = change else {
            return Err(BackendError::NoBackend {
                kind: change.backend(),
            });
        };
        let ctx = self.ctx;
        let uuid = step.uuid;
        let parent = Some(step.parent.clone());
        let result = match step.action {
            Action::Stop => ops::stop::stop(
                ctx,
                &StopOptions {
                    uuid,
                    force: Default::default(),
                },
            ),
            Action::Undefine => ops::undefine::undefine(
                ctx,
                &UndefineOptions {
                    uuid,
                    parent,
                    force: Default::default(),
                },
            ),
            Action::Define => {
                let jsonfile = self.staged(step)?;
                let r = ops::define::define(
                    ctx,
                    &DefineOptions {
                        uuid: Some(uuid),
                        parent,
                        jsonfile: Some(jsonfile.clone()),
                        ..Default::default()
                    },
                );
                let _ = ctx.host.remove_file(&jsonfile);
                r
            }
            Action::Modify => {
                let jsonfile = self.staged(step)?;
                let r = ops::modify::modify(
                    ctx,
                    &ModifyOptions {
                        uuid,
                        parent,
                        mdev_type: None,
                        change: Change::JsonFile(jsonfile.clone()),
                        target: Target::Defined,
                        force: Default::default(),
                    },
                );
                let _ = ctx.host.remove_file(&jsonfile);
                r
            }
            Action::Start => ops::start::start(
                ctx,
                &StartOptions {
                    uuid: Some(uuid),
                    parent,
                    ..Default::default()
                },
            ),
        };
        result.map(drop).map_err(|source| BackendError::Step {
            action: step.action,
            uuid,
            parent: step.parent.clone(),
            source: Box::new(source),
        })
    }
}
