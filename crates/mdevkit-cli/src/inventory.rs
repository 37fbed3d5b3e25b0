//! `mdevkit types`, `list` and `vgpu create/remove`: what the host has in both worlds (mdev
//! and NVIDIA's vendor-specific VFIO), and one vGPU at a time on a VF, under mdevctl's lock.

use mdevkit::desired::session::Session;
use mdevkit::inventory;
use mdevkit::nvidia_vf::{self, Removed};

use crate::cli::{InventoryArgs, InventoryOutput, VgpuCommand};
use crate::commands::{emit, Env, Outcome};

pub fn types(env: &Env, a: &InventoryArgs) -> anyhow::Result<Outcome> {
    let observed = Session::new(&env.ctx, &env.paths).observe();
    emit(&match a.output {
        InventoryOutput::Text => inventory::types_text(&observed),
        InventoryOutput::Json => inventory::types_json(&observed),
    })?;
    Ok(Outcome::Done)
}

pub fn list(env: &Env, a: &InventoryArgs) -> anyhow::Result<Outcome> {
    let observed = Session::new(&env.ctx, &env.paths).observe();
    emit(&match a.output {
        InventoryOutput::Text => inventory::list_text(&observed),
        InventoryOutput::Json => inventory::list_json(&observed),
    })?;
    Ok(Outcome::Done)
}

pub fn vgpu(env: &Env, c: VgpuCommand) -> anyhow::Result<Outcome> {
    let host = &env.ctx.host;
    // mdevctl's lock serialises writers: another `vgpu create` or an apply cannot pick the
    // same VF between our read of its state and our write.
    let _held = env.ctx.hold_lock()?;
    match c {
        VgpuCommand::Create { pf, vgpu_type, vf } => {
            let created = nvidia_vf::create(host, pf, &vgpu_type, vf)?;
            emit(&format!(
                "{} {} {}\n",
                created.vf, created.vgpu_type.id, created.vgpu_type.name
            ))?;
        }
        VgpuCommand::Remove { vf } => match nvidia_vf::remove(host, vf)? {
            Removed::Destroyed(id) => emit(&format!("{vf}: removed vGPU type {id}\n"))?,
            Removed::AlreadyFree => emit(&format!("{vf} had no vGPU: nothing to do\n"))?,
        },
    }
    Ok(Outcome::Done)
}
