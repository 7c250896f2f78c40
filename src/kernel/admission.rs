//! Who may talk to the kernel, and how many connections each may hold. Checked from the peer's
//! credentials (SO_PEERCRED) before a byte is read: by default the kernel's own user and root; a
//! configured group admits its members too, for a kernel shared by several users. Membership is the
//! peer process's real groups (its primary gid and the supplementary `Groups:` of
//! `/proc/PID/status`, else the user's groups from the group database), not just its primary gid.
//! Admission is only the door: what a peer may do to a process is decided per process by its owner
//! (see the verbs).
//!
//! Once admitted, a connection takes a slot from [`ConnectionSlots`]: at most `max_connections` in
//! all and `max_connections_per_uid` per user, both read at each connection so a reload applies to
//! the next one. Both the group and the limits can change at run time ([`Admission::set_group`]).

use nix::unistd::{Gid, Group, Uid, User};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// The group a shared kernel admits, resolved from its name.
#[derive(Clone, Debug, PartialEq, Eq)]
struct AllowedGroup {
    name: String,
    gid: u32,
}

/// The admission rule: the owner, root, and the members of an allowed group.
#[derive(Debug)]
pub struct Admission {
    owner_uid: u32,
    group: RwLock<Option<AllowedGroup>>,
}

/// Who is at the door (from SO_PEERCRED).
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

impl Admission {
    pub fn new(owner_uid: u32, allowed_group: Option<&str>) -> Admission {
        let admission = Admission {
            owner_uid,
            group: RwLock::new(None),
        };
        admission.set_group(allowed_group);
        admission
    }

    /// Admits the members of `name` from now on (none with `None`). Returns whether the group
    /// exists; an unknown group admits nobody and is logged.
    pub fn set_group(&self, name: Option<&str>) -> bool {
        let resolved = name.map(|name| {
            let group = Group::from_name(name).ok().flatten();
            if group.is_none() {
                tracing::warn!(
                    "allowed_group `{name}` is not a group on this system; it admits nobody"
                );
            }
            group.map(|g| AllowedGroup {
                name: name.to_string(),
                gid: g.gid.as_raw(),
            })
        });
        let found = resolved.as_ref().is_none_or(Option::is_some);
        *self.group.write().unwrap_or_else(|p| p.into_inner()) = resolved.flatten();
        found
    }

    /// Whether this caller may connect.
    pub fn admits(&self, caller: Caller) -> bool {
        if caller.uid == 0 || caller.uid == self.owner_uid {
            return true;
        }
        let group = self.group.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(group) = group else {
            return false;
        };
        caller.gid == group.gid || caller_groups(caller).contains(&group.gid)
    }
}

/// The caller's supplementary groups: its process's own (`/proc/PID/status`), else (no pid, or the
/// process is gone or hidden) those the group database gives its user.
fn caller_groups(caller: Caller) -> Vec<u32> {
    let from_process = caller.pid.and_then(|pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status_groups(&status)
    });
    if let Some(groups) = from_process {
        return groups;
    }
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(caller.uid)) else {
        return Vec::new();
    };
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return Vec::new();
    };
    nix::unistd::getgrouplist(&name, Gid::from_raw(caller.gid))
        .map(|groups| groups.into_iter().map(Gid::as_raw).collect())
        .unwrap_or_default()
}

/// The `Groups:` line of a `/proc/PID/status` text.
fn status_groups(status: &str) -> Option<Vec<u32>> {
    let line = status.lines().find_map(|l| l.strip_prefix("Groups:"))?;
    Some(
        line.split_whitespace()
            .filter_map(|g| g.parse().ok())
            .collect(),
    )
}

/// Open connections, in all and per uid.
#[derive(Clone, Debug, Default)]
pub struct ConnectionSlots {
    open: Arc<Mutex<OpenConnections>>,
}

#[derive(Debug, Default)]
struct OpenConnections {
    total: usize,
    per_uid: HashMap<u32, usize>,
}

/// Why a connection got no slot.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoSlot {
    #[error("too many connections to the kernel ({0}, max_connections); try again")]
    Total(usize),
    #[error(
        "too many connections from uid {uid} ({limit}, max_connections_per_uid); close some \
         llmsh sessions or clients and try again"
    )]
    PerUid { uid: u32, limit: usize },
}

impl ConnectionSlots {
    /// Takes a slot for `uid` under the given limits; it is given back when the guard drops.
    pub fn take(
        &self,
        uid: u32,
        max_total: usize,
        max_per_uid: usize,
    ) -> Result<SlotGuard, NoSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mine = open.per_uid.get(&uid).copied().unwrap_or(0);
        if mine >= max_per_uid {
            return Err(NoSlot::PerUid {
                uid,
                limit: max_per_uid,
            });
        }
        if open.total >= max_total {
            return Err(NoSlot::Total(max_total));
        }
        open.total += 1;
        *open.per_uid.entry(uid).or_default() += 1;
        Ok(SlotGuard {
            open: Arc::clone(&self.open),
            uid,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

/// A connection's slot, given back on drop.
#[derive(Debug)]
pub struct SlotGuard {
    open: Arc<Mutex<OpenConnections>>,
    uid: u32,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_uid.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                open.per_uid.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(uid: u32, gid: u32) -> Caller {
        Caller {
            uid,
            gid,
            pid: None,
        }
    }

    #[test]
    fn owner_and_root_are_admitted_and_strangers_are_not() {
        let a = Admission::new(1000, None);
        assert!(a.admits(caller(1000, 1000)));
        assert!(a.admits(caller(0, 0)));
        assert!(!a.admits(caller(1001, 1001)));
    }

    #[test]
    fn members_of_the_allowed_group_are_admitted_and_a_reload_changes_the_group() {
        let Some(gid) = Group::from_name("nogroup")
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())
        else {
            return;
        };
        let a = Admission::new(1000, Some("nogroup"));
        assert!(a.admits(caller(65534, gid)), "primary group");
        assert!(a.set_group(None));
        assert!(!a.admits(caller(65534, gid)), "no group admitted any more");
        assert!(!a.set_group(Some("no-such-group-here")));
        assert!(!a.admits(caller(65534, gid)));
    }

    #[test]
    fn a_supplementary_group_of_the_calling_process_admits_it() {
        // This test process is the caller: its own groups come from /proc/self/status.
        let me = std::process::id() as i32;
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let Some(&extra) = status_groups(&status).unwrap().first() else {
            return; // no supplementary group to test with
        };
        let Some(group) = Group::from_gid(Gid::from_raw(extra)).ok().flatten() else {
            return;
        };
        let a = Admission::new(1, Some(&group.name));
        let stranger = Caller {
            uid: 4242,
            gid: 4242,
            pid: Some(me),
        };
        assert!(a.admits(stranger));
    }

    #[test]
    fn groups_are_read_from_the_status_line() {
        let status = "Name:\tllmsh\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 27 100 \nNgid:\t0\n";
        assert_eq!(status_groups(status), Some(vec![4, 27, 100]));
        assert_eq!(status_groups("Groups:\t\n"), Some(vec![]));
        assert_eq!(status_groups("Name:\tx\n"), None);
    }

    #[test]
    fn slots_are_capped_per_uid_and_in_all_and_given_back_on_drop() {
        let slots = ConnectionSlots::default();
        let a1 = slots.take(1, 3, 2).unwrap();
        let _a2 = slots.take(1, 3, 2).unwrap();
        assert_eq!(
            slots.take(1, 3, 2).unwrap_err(),
            NoSlot::PerUid { uid: 1, limit: 2 }
        );
        let _b1 = slots.take(2, 3, 2).unwrap();
        assert_eq!(slots.take(3, 3, 2).unwrap_err(), NoSlot::Total(3));
        drop(a1);
        assert_eq!(slots.open(), 2);
        let _a3 = slots.take(1, 3, 2).unwrap();
        assert!(
            slots.take(2, 4, 2).is_ok(),
            "a raised limit applies at once"
        );
    }
}
