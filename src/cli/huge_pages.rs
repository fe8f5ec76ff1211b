//! Huge pages for the simulator's heap.
//!
//! A large simulation is thousands of views in one process, each read at
//! random once per packet: with 4 KiB pages nearly every such read also
//! misses the TLB. glibc (2.35 on) backs its heap with transparent huge
//! pages when its tunable `glibc.malloc.hugetlb=1` is set (a 3,000-peer
//! join then takes a tenth less CPU for 1 % more memory, see
//! docs/PERFORMANCE.md), but tunables are read only as a process starts:
//! so `sim` starts itself again with the tunable, unless `GLIBC_TUNABLES`
//! is set already, to anything (set it empty to run without).

/// The glibc tunable that asks `malloc` for transparent huge pages.
const TUNABLE: &str = "glibc.malloc.hugetlb=1";

/// Replaces this process by the same command with [`TUNABLE`] set, when
/// `GLIBC_TUNABLES` is not set; returns when it is, or when this cannot be
/// done (not glibc on Linux, the binary gone), and the run goes on
/// without.
pub fn restart_with_huge_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os("GLIBC_TUNABLES").is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        // Only returns on failure.
        let error = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("GLIBC_TUNABLES", TUNABLE)
            .exec();
        tracing::debug!(%error, "sim goes on without huge pages");
    }
}

/// Whether this process was started with [`TUNABLE`].
pub fn in_effect() -> bool {
    std::env::var("GLIBC_TUNABLES").is_ok_and(|v| v.split(':').any(|t| t == TUNABLE))
}
