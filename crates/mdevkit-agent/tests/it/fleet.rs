//! The agent on one node: label changes, file changes, invalid profiles, busy devices,
//! drift, the host lock and an API server restart, each observed through the fake API
//! server's state-label history and Events and through the simulated host.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::{Fleet, GPU0, PROFILE_LABEL};

#[test]
fn label_set_applies_the_profile_and_reports_success() {
    let Some(mut f) = Fleet::new("label-set") else {
        return;
    };
    f.start_agent();
    // The node has no label yet: the agent waits and changes nothing.
    f.api.wait_for("the agent's watch", |c| {
        c.calls.contains(&("watch".into(), "nodes".into()))
    });
    assert!(f.defined().is_empty());
    assert_eq!(
        f.label_and_wait(Some("small")),
        "success",
        "{}",
        f.agent_log()
    );
    assert_eq!(f.on_parent("mtty").len(), 1);
    assert_eq!(f.active().len(), 1);
    let (reason, message) = f.api.last_event();
    assert_eq!(reason, "ProfileApplied");
    assert!(
        message.contains("profile 'small' applied: 2 change(s)"),
        "{message}"
    );
    let event = f.api.with(|c| c.events[0].clone());
    assert_eq!(event["involvedObject"]["kind"], "Node");
    assert_eq!(event["involvedObject"]["name"], crate::fake_api::NODE);
    assert_eq!(
        event["involvedObject"]["uid"],
        f.api.with(|c| c.node["metadata"]["uid"].clone())
    );
    assert_eq!(event["type"], "Normal");
}

#[test]
fn label_change_applies_the_other_profile_and_shared_devices_keep_their_uuids() {
    let Some(mut f) = Fleet::new("label-change") else {
        return;
    };
    f.start_agent();
    assert_eq!(f.label_and_wait(Some("small")), "success");
    let small = f.on_parent("mtty");
    assert_eq!(
        f.label_and_wait(Some("large")),
        "success",
        "{}",
        f.agent_log()
    );
    let large = f.on_parent("mtty");
    assert_eq!(large.len(), 2);
    assert!(small.is_subset(&large), "{small:?} {large:?}");
    assert_eq!(f.on_parent(GPU0).len(), 2);
    assert_eq!(f.active().len(), 4);
    // Back: only the difference goes; the shared device is the same one.
    assert_eq!(f.label_and_wait(Some("small")), "success");
    assert_eq!(f.on_parent("mtty"), small);
    assert!(f.on_parent(GPU0).is_empty());
    assert_eq!(f.active(), small);
}

#[test]
fn file_change_is_applied() {
    let Some(mut f) = Fleet::new("file-change") else {
        return;
    };
    f.start_agent();
    assert_eq!(f.label_and_wait(Some("small")), "success");
    let before = f.api.with(|c| c.states.len());
    f.publish(&crate::common::PROFILES.replace(
        "- {type: mtty-1, count: 1}\n  large",
        "- {type: mtty-1, count: 3}\n  large",
    ));
    assert_eq!(f.wait_after(before), "success", "{}", f.agent_log());
    assert_eq!(f.on_parent("mtty").len(), 3);
    assert_eq!(f.active().len(), 3);
}

#[test]
fn invalid_file_fails_with_its_line_and_leaves_the_host_untouched() {
    let Some(mut f) = Fleet::new("invalid-file") else {
        return;
    };
    f.start_agent();
    assert_eq!(f.label_and_wait(Some("small")), "success");
    let host = (f.defined(), f.active());
    let before = f.api.with(|c| c.states.len());
    f.publish(&crate::common::PROFILES.replace("{type: mtty-1, count: 1}", "{tpye: mtty-1}"));
    assert_eq!(f.wait_after(before), "failed");
    let (reason, message) = f.api.last_event();
    assert_eq!(reason, "ProfileInvalid");
    assert!(message.contains("config.yaml:6:"), "{message}");
    assert!(message.contains("unknown field `tpye`"), "{message}");
    assert!(message.contains("nothing changed"), "{message}");
    assert_eq!(
        f.api.with(|c| c.events.last().unwrap()["type"].clone()),
        "Warning"
    );
    assert_eq!((f.defined(), f.active()), host);
    // An unknown profile is refused the same way.
    assert_eq!(f.label_and_wait(Some("nosuch")), "failed");
    assert!(
        f.api.last_event().1.contains("nosuch"),
        "{:?}",
        f.api.last_event()
    );
    assert_eq!((f.defined(), f.active()), host);
}

#[test]
fn profile_the_host_cannot_take_fails_with_the_reason_and_changes_nothing() {
    let Some(mut f) = Fleet::new("impossible") else {
        return;
    };
    f.start_agent();
    assert_eq!(f.label_and_wait(Some("small")), "success");
    let host = (f.defined(), f.active());
    assert_eq!(f.label_and_wait(Some("impossible")), "failed");
    let (reason, message) = f.api.last_event();
    assert_eq!(reason, "ProfileFailed");
    assert!(message.contains("mtty-9"), "{message}");
    assert_eq!((f.defined(), f.active()), host);
}

#[test]
fn busy_device_is_not_removed_and_the_profile_fails() {
    let Some(mut f) = Fleet::new("busy") else {
        return;
    };
    f.start_agent();
    assert_eq!(f.label_and_wait(Some("small")), "success");
    let small = f.active();
    assert_eq!(f.label_and_wait(Some("large")), "success");
    let in_use: BTreeSet<String> = f.on_parent("mtty").difference(&small).cloned().collect();
    let [uuid] = in_use.iter().collect::<Vec<_>>()[..] else {
        panic!("{in_use:?}");
    };
    f.sim.set_busy(uuid, true).unwrap();
    assert_eq!(f.label_and_wait(Some("small")), "failed");
    let (reason, message) = f.api.last_event();
    assert_eq!(reason, "ProfileFailed");
    assert!(message.contains(uuid.as_str()), "{message}");
    assert!(message.to_lowercase().contains("busy"), "{message}");
    assert!(f.active().contains(uuid));
    assert!(f.on_parent("mtty").contains(uuid));
    // Once the VM lets go, the next period's retry converges.
    let before = f.api.with(|c| c.states.len());
    f.sim.set_busy(uuid, false).unwrap();
    assert_eq!(f.wait_after(before), "success", "{}", f.agent_log());
    assert_eq!(f.active(), small);
}

#[test]
fn drift_is_repaired_on_the_next_period() {
    let Some(mut f) = Fleet::new("drift") else {
        return;
    };
    f.start_agent();
    assert_eq!(f.label_and_wait(Some("small")), "success");
    let devices = f.active();
    let uuid = devices.first().unwrap();
    let before = f.api.with(|c| c.states.len());
    // Stopped by hand, with the simulated kernel's own interface.
    std::fs::write(f.sys().join(format!("bus/mdev/devices/{uuid}/remove")), "1").unwrap();
    assert_eq!(f.wait_after(before), "success", "{}", f.agent_log());
    assert_eq!(f.active(), devices);
    let (reason, message) = f.api.last_event();
    assert_eq!(reason, "ProfileRepaired");
    assert!(message.contains(uuid.as_str()), "{message}");
}

#[test]
fn apply_waits_for_the_host_lock() {
    let Some(mut f) = Fleet::new("lock") else {
        return;
    };
    // Another agent (or mdevctl) holds the lock, as during a rolling update.
    let held =
        mdevkit::host::lock::acquire(&f.path("run/lock/mdevctl.lock"), Duration::ZERO).unwrap();
    f.start_agent();
    let before = f.api.with(|c| c.states.len());
    f.api.label(PROFILE_LABEL, Some("small"));
    f.api.wait_for("pending", |c| c.states.len() > before);
    // The agent is blocked on the lock: give it ample time to (wrongly) change something.
    std::thread::sleep(Duration::from_secs(2));
    assert!(f.defined().is_empty());
    assert_eq!(f.api.with(|c| c.states.len()), before + 1);
    drop(held);
    assert_eq!(f.wait_after(before), "success", "{}", f.agent_log());
    assert_eq!(f.active().len(), 1);
}

#[test]
fn watch_resumes_after_an_api_server_restart() {
    let Some(mut f) = Fleet::new("restart") else {
        return;
    };
    f.start_agent();
    assert_eq!(f.label_and_wait(Some("small")), "success");
    f.api.stop();
    // The label changes while the server is away; the agent sees it once it is back.
    f.api.label(PROFILE_LABEL, Some("large"));
    let before = f.api.with(|c| c.states.len());
    f.api.restart();
    assert_eq!(f.wait_after(before), "success", "{}", f.agent_log());
    assert_eq!(f.active().len(), 4);
    // And the resumed watch keeps following the label.
    assert_eq!(f.label_and_wait(Some("small")), "success");
    assert_eq!(f.active().len(), 1);
}
