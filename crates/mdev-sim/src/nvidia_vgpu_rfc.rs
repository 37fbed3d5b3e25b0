//! The upstream RFC driver (`vfio/nvidia-vgpu`, 2025, not merged) behind the same `nvidia/`
//! files: one type per GPU (the first vGPU fixes it), shorter lists, other errnos (spec §3, §4).

use crate::nvidia_vf::{kstrtol10, GpuState, Hold, VfState, CREATABLE_HEADER};
use crate::parse::Errno;

/// The header and every type while the GPU is idle; then only the GPU's type, without the
/// header, while it has room; nothing once full, on a VF with a vGPU, or before the types
/// are known \[I\].
pub(crate) fn creatable_text(gpu: &GpuState, vf: &VfState) -> String {
    if !gpu.published || vf.vgpu.is_some() {
        return String::new();
    }
    let line = |id: u32, name: &str| format!("{id:<5} : {name}\n");
    let existing: Vec<u32> = gpu.vgpus().map(|t| t.id).collect();
    let Some(&current) = existing.first() else {
        let mut text = CREATABLE_HEADER.to_string();
        for t in gpu.spec.types.iter().filter(|t| gpu.max_instances(t) > 0) {
            text.push_str(&line(t.id, &t.name));
        }
        return text;
    };
    match gpu.type_of(current) {
        Some(t) if (existing.len() as u64) < u64::from(gpu.max_instances(t)) => line(t.id, &t.name),
        _ => String::new(),
    }
}

/// `current_vgpu_type`'s store function in the RFC: `kstrtoul` base 10; EBUSY while the
/// device is open; `0` on an empty VF succeeds; unknown type ENODEV, another type than the
/// GPU's EINVAL, no room ENOSPC. A type on a VF that has one: EPERM \[I\].
pub(crate) fn current_type_store(
    gpu: &mut GpuState,
    index: usize,
    data: &[u8],
) -> Result<(), Errno> {
    let wanted = kstrtol10(data)?;
    let wanted = u32::try_from(wanted).map_err(|_| Errno::EINVAL)?;
    let known = gpu.published && gpu.type_of(wanted).is_some();
    let max = gpu.type_of(wanted).map_or(0, |t| gpu.max_instances(t));
    let existing: Vec<u32> = gpu.vgpus().map(|t| t.id).collect();
    let placement = gpu.lowest_free_placement();
    let vf = gpu.vfs.get_mut(index).ok_or(Errno::ENODEV)?;
    if vf.hold != Hold::Free {
        return Err(Errno::EBUSY);
    }
    if wanted == 0 {
        if vf.vgpu.is_some() {
            *vf = VfState {
                warm_update: vf.warm_update,
                ..VfState::default()
            };
        }
        return Ok(());
    }
    if vf.vgpu.is_some() {
        return Err(Errno::EPERM);
    }
    if !known {
        return Err(Errno::ENODEV);
    }
    if existing.first().is_some_and(|&id| id != wanted) {
        return Err(Errno::EINVAL);
    }
    if existing.len() as u64 >= u64::from(max) {
        return Err(Errno::ENOSPC);
    }
    vf.vgpu = Some(wanted);
    vf.placement = placement;
    Ok(())
}
