//! Pinning threads to CPUs, so that a comparison runs its two sides with the same placement: a
//! round trip between threads on one CPU is a context switch, across CPUs a wake-up, and the two cost
//! different amounts on a virtual machine.

/// The CPUs of this machine online (whatever the calling thread is pinned to).
pub fn cpus() -> usize {
    // SAFETY: sysconf only reads a system setting.
    let n = unsafe { nix::libc::sysconf(nix::libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// Pins the calling thread to `cpu` (`None`: lets it run on any).
pub fn pin(cpu: Option<usize>) {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write inside it; sched_setaffinity reads it.
    unsafe {
        let mut set: nix::libc::cpu_set_t = std::mem::zeroed();
        nix::libc::CPU_ZERO(&mut set);
        match cpu {
            Some(c) => nix::libc::CPU_SET(c, &mut set),
            None => (0..cpus()).for_each(|c| nix::libc::CPU_SET(c, &mut set)),
        }
        nix::libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set);
    }
}
