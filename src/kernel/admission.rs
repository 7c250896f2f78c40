//! Who may talk to the kernel: checked from the peer's credentials (SO_PEERCRED) before a byte is
//! read. By default the kernel's own user and root; a configured group admits its members too, for a
//! kernel shared by several users. Admission is only the door: what a peer may do to a process is
//! decided per process by its owner (see the verbs).

use nix::unistd::{Gid, Group, User};

/// The admission rule, resolved once at start-up.
#[derive(Clone, Debug)]
pub struct Admission {
    owner_uid: u32,
    group: Option<(u32, Vec<String>)>,
}

impl Admission {
    pub fn new(owner_uid: u32, allowed_group: Option<&str>) -> Admission {
        let group = allowed_group
            .and_then(|name| Group::from_name(name).ok().flatten())
            .map(|g| (g.gid.as_raw(), g.mem));
        Admission { owner_uid, group }
    }

    /// Whether a peer with this uid and primary gid may connect.
    pub fn admits(&self, uid: u32, gid: u32) -> bool {
        if uid == 0 || uid == self.owner_uid {
            return true;
        }
        let Some((group, members)) = &self.group else {
            return false;
        };
        if gid == *group {
            return true;
        }
        // A supplementary member: listed in the group, or the group is among the user's groups.
        let Ok(Some(user)) = User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
            return false;
        };
        members.contains(&user.name) || user.gid == Gid::from_raw(*group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_and_root_are_admitted_and_strangers_are_not() {
        let a = Admission::new(1000, None);
        assert!(a.admits(1000, 1000));
        assert!(a.admits(0, 0));
        assert!(!a.admits(1001, 1001));
    }

    #[test]
    fn members_of_the_allowed_group_are_admitted() {
        let gid = Group::from_name("nogroup")
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw());
        let Some(gid) = gid else { return };
        let a = Admission::new(1000, Some("nogroup"));
        assert!(a.admits(65534, gid), "primary group");
        assert!(
            !a.admits(65534, gid + 1)
                || User::from_uid(65534.into())
                    .ok()
                    .flatten()
                    .is_some_and(|u| u.gid.as_raw() == gid)
        );
    }
}
