//! The simulated host: parents register and go away, mdevs are created and removed, pools count.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Condvar};
use std::time::Duration;

use crate::ap::{ApAttr, ApBus, Mask, Matrix};
use crate::parse::{Errno, Uuid};
use crate::profile::{errno_of, ParentKind, ParentSpec, Profile, TypeSpec};
use crate::tree::{Ino, Role, Tree};
use crate::uevent::{self, Action, Broadcaster, Uevent};

/// Why a control request was refused (a control command, or a call on the mounted handle).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no parent '{0}' in this profile")]
    UnknownParent(String),
    #[error("parent '{0}' is already present")]
    ParentPresent(String),
    #[error("parent '{0}' is not present")]
    ParentAbsent(String),
    #[error("parent '{0}' has already published its types")]
    AlreadyPublished(String),
    #[error("no active mdev {0}")]
    UnknownDevice(String),
    #[error("no file '{0}' in the simulated sysfs")]
    UnknownPath(String),
    #[error("{0}")]
    Usage(String),
}

/// One finished run of the parent-add hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRun {
    pub parent: String,
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug)]
struct ParentState {
    spec: Arc<ParentSpec>,
    /// Root-relative path of the parent's own directory.
    dir: String,
    published: bool,
    devices: BTreeSet<Uuid>,
}

#[derive(Debug)]
struct Device {
    parent: String,
    ty: String,
    /// The IOMMU group the vfio core gave it (the lowest free number, as the ida does).
    group: u32,
    /// Its VFIO device number (`vfio-dev/vfio<n>`, the lowest free, as the ida gives).
    vfio_dev: u32,
    driver: Option<String>,
    attrs: BTreeMap<String, String>,
    matrix: Option<Matrix>,
}

/// The whole simulated kernel state plus the tree that shows it.
#[derive(Debug)]
pub struct Kernel {
    pub tree: Tree,
    catalogue: BTreeMap<String, Arc<ParentSpec>>,
    parents: BTreeMap<String, ParentState>,
    devices: BTreeMap<Uuid, Device>,
    ap: Option<ApBus>,
    /// SR-IOV GPUs on NVIDIA's vendor-specific VFIO path, by PF address.
    pub(crate) gpus: crate::nvidia_vf::Gpus,
    busy: HashSet<Uuid>,
    faults: HashMap<String, Errno>,
    /// Like `faults`, for the next write only (reads pass).
    write_faults: HashMap<String, Errno>,
    slow: HashMap<String, Duration>,
    short: HashMap<String, usize>,
    /// Parents that registered their types and whose hook has not been started yet.
    pub(crate) registered: Vec<String>,
    pub(crate) hook: Vec<String>,
    pub(crate) hooks_running: usize,
    /// Notified (with the lock held) whenever a hook finishes, for [`crate::MountedSim::wait_hooks`].
    pub(crate) hook_finished: Arc<Condvar>,
    pub(crate) hook_runs: Vec<HookRun>,
    pub(crate) last_error: String,
    /// Where uevents go once mounted (start-up parents announce nothing, as at boot).
    pub(crate) uevents: Option<Broadcaster>,
}

impl Kernel {
    pub fn new(profile: &Profile) -> Kernel {
        let mut tree = Tree::new();
        // The mdev module creates these before any parent registers.
        tree.mkdir_p("bus/mdev/devices");
        tree.mkdir_p("bus/mdev/drivers");
        tree.mkdir_p("kernel/iommu_groups");
        tree.mkdir_p("class/mdev_bus");
        tree.put_file("mdev-sim/control", 0o600, Role::Control);
        tree.put_file("mdev-sim/last_error", 0o444, Role::LastError);
        tree.put_file("mdev-sim/hooks", 0o444, Role::Hooks);
        let ap = profile.ap_bus.as_ref().map(|spec| ApBus {
            max_adapter: spec.max_adapter,
            max_domain: spec.max_domain,
            apmask: Mask::parse_absolute(&spec.apmask).unwrap_or_default(),
            aqmask: Mask::parse_absolute(&spec.aqmask).unwrap_or_default(),
        });
        if ap.is_some() {
            tree.put_file("bus/ap/apmask", 0o644, Role::ApMask { domains: false });
            tree.put_file("bus/ap/aqmask", 0o644, Role::ApMask { domains: true });
        }
        let mut host = Kernel {
            tree,
            catalogue: BTreeMap::new(),
            parents: BTreeMap::new(),
            devices: BTreeMap::new(),
            ap,
            gpus: BTreeMap::new(),
            busy: HashSet::new(),
            faults: HashMap::new(),
            write_faults: HashMap::new(),
            slow: HashMap::new(),
            short: HashMap::new(),
            registered: Vec::new(),
            hook: Vec::new(),
            hooks_running: 0,
            hook_finished: Arc::new(Condvar::new()),
            hook_runs: Vec::new(),
            last_error: String::new(),
            uevents: None,
        };
        let mut shared: HashMap<*const ParentSpec, Arc<ParentSpec>> = HashMap::new();
        for (name, spec) in profile.expanded() {
            // Numbered runs share one spec instead of thousands of copies.
            let spec = shared
                .entry(std::ptr::from_ref(spec))
                .or_insert_with(|| Arc::new(spec.clone()))
                .clone();
            host.catalogue.insert(name, spec);
        }
        let initial: Vec<(String, bool)> = host
            .catalogue
            .iter()
            .filter(|(_, s)| s.present)
            .map(|(n, s)| (n.clone(), s.types_published))
            .collect();
        for (name, publish) in initial {
            // Cannot fail: the names come from the catalogue and nothing is present yet.
            let _ = host.add_parent(&name, publish);
        }
        host.add_gpus(&profile.pci_gpus);
        // Start-up registrations are not hot-plug events: no hook runs for them.
        host.registered.clear();
        host
    }

    /// Parent names known to the profile, present or not.
    pub fn known_parents(&self) -> Vec<String> {
        self.catalogue.keys().cloned().collect()
    }

    pub fn present_parents(&self) -> Vec<String> {
        self.parents.keys().cloned().collect()
    }

    pub fn active_devices(&self) -> Vec<Uuid> {
        self.devices.keys().cloned().collect()
    }

    /// Registers a parent from the profile's catalogue; with `publish` its types appear too.
    pub fn add_parent(&mut self, name: &str, publish: bool) -> Result<(), ControlError> {
        let spec = self
            .catalogue
            .get(name)
            .cloned()
            .ok_or_else(|| ControlError::UnknownParent(name.to_string()))?;
        if self.parents.contains_key(name) {
            return Err(ControlError::ParentPresent(name.to_string()));
        }
        let dir = format!("{}/{name}", spec.dir);
        self.tree.mkdir_p(&dir);
        self.tree.put_link(&format!("class/mdev_bus/{name}"), &dir);
        if let Some(bus) = &spec.bus {
            self.tree
                .put_link(&format!("bus/{bus}/devices/{name}"), &dir);
        }
        if let Some(ids) = &spec.pci_ids {
            for (file, value) in [("vendor", &ids.vendor), ("device", &ids.device)] {
                self.tree.put_file(
                    &format!("{dir}/{file}"),
                    0o444,
                    Role::Static(format!("{value}\n")),
                );
            }
        }
        if let Some(driver) = &spec.bound_driver {
            let bus = spec.bus.as_deref().unwrap_or("platform");
            let drv = format!("bus/{bus}/drivers/{driver}");
            self.tree.mkdir_p(&drv);
            self.tree.put_link(&format!("{dir}/driver"), &drv);
        }
        // What makes it a device for libudev: `uevent`, and `subsystem` (its bus, or the
        // class a virtual device belongs to, with the class's link back).
        self.put_uevent_file(&dir, spec.bound_driver.as_deref());
        let subsystem = uevent::parent_subsystem(&spec);
        if spec.bus.is_some() {
            self.tree
                .put_link(&format!("{dir}/subsystem"), &format!("bus/{subsystem}"));
        } else if spec.dir.starts_with("devices/virtual/") {
            self.tree
                .put_link(&format!("class/{subsystem}/{name}"), &dir);
            self.tree
                .put_link(&format!("{dir}/subsystem"), &format!("class/{subsystem}"));
        }
        let added = uevent::parent_event(&spec, &dir, Action::Add, None);
        self.emit(added);
        self.parents.insert(
            name.to_string(),
            ParentState {
                spec,
                dir,
                published: false,
                devices: BTreeSet::new(),
            },
        );
        if publish {
            self.publish_types(name)?;
        }
        Ok(())
    }

    /// Makes `mdev_supported_types` appear: the moment the kernel announces `MDEV_STATE=registered`.
    pub fn publish_types(&mut self, name: &str) -> Result<(), ControlError> {
        let parent = self
            .parents
            .get_mut(name)
            .ok_or_else(|| ControlError::ParentAbsent(name.to_string()))?;
        if parent.published {
            return Err(ControlError::AlreadyPublished(name.to_string()));
        }
        parent.published = true;
        let spec = parent.spec.clone();
        let dir = parent.dir.clone();
        self.tree.mkdir_p(&format!("{dir}/mdev_supported_types"));
        for ty in &spec.types {
            let tdir = format!("{dir}/mdev_supported_types/{}", ty.id);
            self.tree.put_file(
                &format!("{tdir}/available_instances"),
                0o444,
                Role::AvailableInstances {
                    parent: name.to_string(),
                    ty: ty.id.clone(),
                },
            );
            self.tree.put_file(
                &format!("{tdir}/create"),
                0o200,
                Role::Create {
                    parent: name.to_string(),
                    ty: ty.id.clone(),
                },
            );
            self.tree.put_file(
                &format!("{tdir}/device_api"),
                0o444,
                Role::Static(format!("{}\n", ty.device_api)),
            );
            if let Some(pretty) = &ty.name {
                self.tree.put_file(
                    &format!("{tdir}/name"),
                    0o444,
                    Role::Static(format!("{pretty}\n")),
                );
            }
            if let Some(description) = &ty.description {
                self.tree.put_file(
                    &format!("{tdir}/description"),
                    0o444,
                    Role::Static(format!("{description}\n")),
                );
            }
            self.tree.mkdir_p(&format!("{tdir}/devices"));
        }
        self.registered.push(name.to_string());
        let ev = uevent::parent_event(&spec, &dir, Action::Change, Some("registered"));
        self.emit(ev);
        Ok(())
    }

    /// A device's `uevent` file: what the driver core adds to its events (`DRIVER` when
    /// bound), which libudev reads, and needs, to see a directory as a device at all.
    fn put_uevent_file(&mut self, dir: &str, driver: Option<&str>) {
        let text = driver.map(|d| format!("DRIVER={d}\n")).unwrap_or_default();
        self.tree
            .put_file(&format!("{dir}/uevent"), 0o444, Role::Static(text));
    }

    fn emit(&mut self, ev: Uevent) {
        if let Some(b) = &mut self.uevents {
            b.send(&ev);
        }
    }

    /// Unregisters a parent; its mdevs go with it, as on driver unload.
    pub fn remove_parent(&mut self, name: &str) -> Result<(), ControlError> {
        let parent = self
            .parents
            .remove(name)
            .ok_or_else(|| ControlError::ParentAbsent(name.to_string()))?;
        // mdev_unregister_parent(): the mdevs go first, then `MDEV_STATE=unregistered`;
        // the device itself leaves last.
        for uuid in &parent.devices {
            if let Some(dev) = self.devices.remove(uuid) {
                self.unlink_device(uuid, &dev);
                self.device_gone_uevents(&parent.dir, uuid, &dev);
            }
        }
        if parent.published {
            let ev = uevent::parent_event(
                &parent.spec,
                &parent.dir,
                Action::Change,
                Some("unregistered"),
            );
            self.emit(ev);
        }
        let ev = uevent::parent_event(&parent.spec, &parent.dir, Action::Remove, None);
        self.emit(ev);
        self.tree.remove_path(&parent.dir);
        self.tree.remove_path(&format!("class/mdev_bus/{name}"));
        if parent.spec.bus.is_none() && parent.spec.dir.starts_with("devices/virtual/") {
            let class = uevent::parent_subsystem(&parent.spec);
            self.tree.remove_path(&format!("class/{class}/{name}"));
        }
        if let Some(bus) = &parent.spec.bus {
            self.tree.remove_path(&format!("bus/{bus}/devices/{name}"));
        }
        Ok(())
    }

    pub fn set_busy(&mut self, uuid: &str, busy: bool) -> Result<(), ControlError> {
        let uuid = Uuid::parse(uuid)
            .filter(|u| self.devices.contains_key(u))
            .ok_or_else(|| ControlError::UnknownDevice(uuid.to_string()))?;
        if busy {
            self.busy.insert(uuid);
        } else {
            self.busy.remove(&uuid);
        }
        Ok(())
    }

    /// The next read or write of `path` (root-relative) fails with `errno`, once.
    pub fn inject_failure(&mut self, path: &str, errno: Errno) {
        self.faults
            .insert(path.trim_matches('/').to_string(), errno);
    }

    /// The next write of `path` (root-relative) fails with `errno`, once; reads are unaffected.
    pub fn inject_write_failure(&mut self, path: &str, errno: Errno) {
        self.write_faults
            .insert(path.trim_matches('/').to_string(), errno);
    }

    /// Each write to `path` takes at least `delay` (zero clears it).
    pub fn slow_writes(&mut self, path: &str, delay: Duration) {
        let path = path.trim_matches('/').to_string();
        if delay.is_zero() {
            self.slow.remove(&path);
        } else {
            self.slow.insert(path, delay);
        }
    }

    /// The next write to `path` (root-relative) takes only its first `bytes` bytes, once.
    pub fn short_write(&mut self, path: &str, bytes: usize) {
        self.short.insert(path.trim_matches('/').to_string(), bytes);
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
        self.write_faults.clear();
        self.slow.clear();
        self.short.clear();
    }

    /// Rules name paths as users spell them (often through `bus/mdev/devices/<uuid>`), and
    /// may be set before the file exists, so they are resolved when a request comes in.
    fn rule_for<'a, T>(
        &self,
        rules: &'a HashMap<String, T>,
        ino: Ino,
    ) -> Option<(&'a String, &'a T)> {
        rules
            .iter()
            .find(|(path, _)| self.tree.resolve_follow(path) == Some(ino))
    }

    pub(crate) fn take_fault(&mut self, ino: Ino) -> Option<Errno> {
        let path = self.rule_for(&self.faults, ino)?.0.clone();
        self.faults.remove(&path)
    }

    pub(crate) fn take_write_fault(&mut self, ino: Ino) -> Option<Errno> {
        let path = self.rule_for(&self.write_faults, ino)?.0.clone();
        self.write_faults.remove(&path)
    }

    pub(crate) fn take_short_write(&mut self, ino: Ino) -> Option<usize> {
        let path = self.rule_for(&self.short, ino)?.0.clone();
        self.short.remove(&path)
    }

    pub(crate) fn write_delay(&self, ino: Ino) -> Option<Duration> {
        self.rule_for(&self.slow, ino).map(|(_, d)| *d)
    }

    fn type_spec(&self, parent: &str, ty: &str) -> Option<(&ParentState, &TypeSpec)> {
        let p = self.parents.get(parent)?;
        let t = p.spec.types.iter().find(|t| t.id == ty)?;
        Some((p, t))
    }

    /// `available_instances`, and the errno `create` gives when it is 0.
    pub fn available(&self, parent: &str, ty: &str) -> (u32, Errno) {
        let Some((p, t)) = self.type_spec(parent, ty) else {
            return (0, Errno::ENODEV);
        };
        let mut used_pool: u32 = 0;
        let mut of_type: u32 = 0;
        let mut other_type = false;
        for uuid in &p.devices {
            if let Some(d) = self.devices.get(uuid) {
                let cost = p
                    .spec
                    .types
                    .iter()
                    .find(|x| x.id == d.ty)
                    .map_or(1, |x| x.cost);
                used_pool = used_pool.saturating_add(cost);
                if d.ty == ty {
                    of_type += 1;
                } else {
                    other_type = true;
                }
            }
        }
        let own = t.max_instances.map(|m| m.saturating_sub(of_type));
        if own == Some(0) {
            return (0, errno_of(&t.errno).unwrap_or(Errno::EUSERS));
        }
        let pool_errno = p
            .spec
            .pool
            .as_ref()
            .and_then(|pool| errno_of(&pool.errno).ok())
            .unwrap_or(Errno::ENOSPC);
        if p.spec.homogeneous && other_type {
            // The GPU is in another type's mode: the driver rejects the request itself rather
            // than running out (a choice, not verified against NVIDIA's closed driver).
            return (0, Errno::EINVAL);
        }
        let pool = p
            .spec
            .pool
            .as_ref()
            .map(|pool| pool.size.saturating_sub(used_pool) / t.cost.max(1));
        let n = match (own, pool) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => i32::MAX.unsigned_abs(),
        };
        (n, pool_errno)
    }

    /// A write to `<type>/create`, checked in the mdev core's order: UUID, duplicate, capacity.
    pub fn create(&mut self, parent: &str, ty: &str, data: &[u8]) -> Result<Uuid, Errno> {
        let uuid = Uuid::from_create_write(data)?;
        if self.devices.contains_key(&uuid) {
            return Err(Errno::EEXIST);
        }
        let (left, errno) = self.available(parent, ty);
        if left == 0 {
            return Err(errno);
        }
        let Some((p, t)) = self.type_spec(parent, ty) else {
            return Err(Errno::ENODEV);
        };
        let pdir = p.dir.clone();
        let kind = p.spec.kind;
        let driver = p.spec.driver.clone();
        let attrs: Vec<_> = t.attributes.clone();
        let ddir = format!("{pdir}/{uuid}");
        self.tree.mkdir_p(&ddir);
        self.tree.put_link(
            &format!("{ddir}/mdev_type"),
            &format!("{pdir}/mdev_supported_types/{ty}"),
        );
        self.tree.put_link(&format!("{ddir}/subsystem"), "bus/mdev");
        let group = (0..)
            .find(|g| {
                !self.devices.values().any(|d| d.group == *g)
                    && self
                        .tree
                        .resolve(&format!("kernel/iommu_groups/{g}"))
                        .is_none()
            })
            .unwrap_or(u32::MAX);
        let gdir = format!("kernel/iommu_groups/{group}");
        self.tree.put_link(&format!("{ddir}/iommu_group"), &gdir);
        self.tree.put_link(&format!("{gdir}/devices/{uuid}"), &ddir);
        if let Some(driver) = &driver {
            let drv = format!("bus/mdev/drivers/{driver}");
            self.tree.put_link(&format!("{ddir}/driver"), &drv);
            self.tree.put_link(&format!("{drv}/{uuid}"), &ddir);
        }
        self.tree
            .put_file(&format!("{ddir}/remove"), 0o200, Role::Remove(uuid.clone()));
        self.put_uevent_file(&ddir, driver.as_deref());
        let mut values = BTreeMap::new();
        for a in &attrs {
            self.tree.put_file(
                &format!("{ddir}/{}", a.name),
                a.mode.bits(),
                Role::Attr {
                    uuid: uuid.clone(),
                    name: a.name.clone(),
                },
            );
            values.insert(a.name.clone(), a.value.replace("{uuid}", uuid.as_str()));
        }
        let matrix = (kind == ParentKind::VfioAp).then(|| {
            for attr in ApAttr::ALL {
                self.tree.put_file(
                    &format!("{ddir}/{}", attr.file_name()),
                    attr.mode(),
                    Role::Ap {
                        uuid: uuid.clone(),
                        attr,
                    },
                );
            }
            Matrix::default()
        });
        self.tree
            .put_link(&format!("bus/mdev/devices/{uuid}"), &ddir);
        self.tree.put_link(
            &format!("{pdir}/mdev_supported_types/{ty}/devices/{uuid}"),
            &ddir,
        );
        if let Some(p) = self.parents.get_mut(parent) {
            p.devices.insert(uuid.clone());
        }
        let vfio_dev = (0..)
            .find(|n| !self.devices.values().any(|d| d.vfio_dev == *n))
            .unwrap_or(u32::MAX);
        // device_add() announces the device before its driver binds; probing registers it
        // with VFIO (its group's character device, its own vfio-dev device) before `bind`.
        self.emit(uevent::mdev_event(&pdir, &uuid, Action::Add, None));
        if let Some(d) = &driver {
            for ev in uevent::vfio_events(&pdir, &uuid, group, vfio_dev, Action::Add) {
                self.emit(ev);
            }
            self.emit(uevent::mdev_event(&pdir, &uuid, Action::Bind, Some(d)));
        }
        self.devices.insert(
            uuid.clone(),
            Device {
                parent: parent.to_string(),
                ty: ty.to_string(),
                group,
                vfio_dev,
                driver,
                attrs: values,
                matrix,
            },
        );
        Ok(uuid)
    }

    /// A write to `<uuid>/remove`: `kstrtoul`, then 0 does nothing and anything else removes.
    pub fn remove_write(&mut self, uuid: &Uuid, data: &[u8]) -> Result<(), Errno> {
        if crate::parse::kstrtoul(data)? == 0 {
            return Ok(());
        }
        if self.busy.contains(uuid) {
            return Err(Errno::EBUSY);
        }
        self.remove_device(uuid).ok_or(Errno::ENODEV)
    }

    fn remove_device(&mut self, uuid: &Uuid) -> Option<()> {
        let dev = self.devices.remove(uuid)?;
        let pdir = self.parents.get_mut(&dev.parent).map(|p| {
            p.devices.remove(uuid);
            p.dir.clone()
        })?;
        self.tree.remove_path(&format!("{pdir}/{uuid}"));
        self.tree.remove_path(&format!(
            "{pdir}/mdev_supported_types/{}/devices/{uuid}",
            dev.ty
        ));
        self.unlink_device(uuid, &dev);
        self.device_gone_uevents(&pdir, uuid, &dev);
        Some(())
    }

    /// device_del(): the driver lets go (VFIO's devices go, then `unbind`), then `remove`.
    fn device_gone_uevents(&mut self, pdir: &str, uuid: &Uuid, dev: &Device) {
        if dev.driver.is_some() {
            for ev in uevent::vfio_events(pdir, uuid, dev.group, dev.vfio_dev, Action::Remove) {
                self.emit(ev);
            }
            self.emit(uevent::mdev_event(pdir, uuid, Action::Unbind, None));
        }
        self.emit(uevent::mdev_event(pdir, uuid, Action::Remove, None));
    }

    /// The first failure to broadcast a uevent, if any.
    pub fn uevent_error(&self) -> Option<String> {
        self.uevents.as_ref().and_then(|b| b.error.clone())
    }

    /// Removes what points at a device from outside its parent's directory.
    fn unlink_device(&mut self, uuid: &Uuid, dev: &Device) {
        self.busy.remove(uuid);
        self.tree.remove_path(&format!("bus/mdev/devices/{uuid}"));
        self.tree
            .remove_path(&format!("kernel/iommu_groups/{}", dev.group));
        if let Some(driver) = &dev.driver {
            self.tree
                .remove_path(&format!("bus/mdev/drivers/{driver}/{uuid}"));
        }
    }

    pub(crate) fn attr_value(&self, uuid: &Uuid, name: &str) -> Option<&String> {
        self.devices.get(uuid)?.attrs.get(name)
    }

    pub(crate) fn attr_rule(&self, uuid: &Uuid, name: &str) -> Option<crate::profile::WriteRule> {
        let d = self.devices.get(uuid)?;
        let (_, t) = self.type_spec(&d.parent, &d.ty)?;
        t.attributes.iter().find(|a| a.name == name).map(|a| a.rule)
    }

    pub(crate) fn set_attr(&mut self, uuid: &Uuid, name: &str, value: String) {
        if let Some(d) = self.devices.get_mut(uuid) {
            d.attrs.insert(name.to_string(), value);
        }
    }

    pub(crate) fn matrix(&self, uuid: &Uuid) -> Option<&Matrix> {
        self.devices.get(uuid)?.matrix.as_ref()
    }

    pub(crate) fn ap_store(&mut self, uuid: &Uuid, attr: ApAttr, data: &[u8]) -> Result<(), Errno> {
        let bus = self.ap.as_ref().ok_or(Errno::ENODEV)?;
        let current = self.matrix(uuid).ok_or(Errno::ENODEV)?;
        let others: Vec<&Matrix> = self
            .devices
            .iter()
            .filter(|(u, _)| *u != uuid)
            .filter_map(|(_, d)| d.matrix.as_ref())
            .collect();
        let new = crate::ap::store(bus, current, &others, attr, data)?;
        if let Some(d) = self.devices.get_mut(uuid) {
            d.matrix = Some(new);
        }
        Ok(())
    }

    pub(crate) fn ap_mask_show(&self, domains: bool) -> Option<String> {
        let bus = self.ap.as_ref()?;
        let mask = if domains { bus.aqmask } else { bus.apmask };
        Some(format!("{}\n", mask.to_hex()))
    }

    pub(crate) fn ap_mask_store(&mut self, domains: bool, data: &[u8]) -> Result<(), Errno> {
        let text = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
        let mut bus = self.ap.clone().ok_or(Errno::ENODEV)?;
        if domains {
            bus.aqmask = bus.aqmask.parse_edit(text, bus.max_domain)?;
        } else {
            bus.apmask = bus.apmask.parse_edit(text, bus.max_adapter)?;
        }
        let matrices: Vec<&Matrix> = self
            .devices
            .values()
            .filter_map(|d| d.matrix.as_ref())
            .collect();
        crate::ap::check_mask_change(&bus, &matrices)?;
        self.ap = Some(bus);
        Ok(())
    }
}
