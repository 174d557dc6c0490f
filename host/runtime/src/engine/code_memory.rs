//! Where compiled plugin code is made executable, so that plugins run at native speed
//! also where memory may never gain execute permission: systemd's
//! `MemoryDenyWriteExecute=yes` (`prctl(PR_SET_MDWE)` from systemd 254 on Linux 6.3+;
//! before, a seccomp filter refusing `mprotect(PROT_EXEC)` with EPERM), or a process
//! that set `PR_SET_MDWE` itself.
//!
//! wasmtime writes compiled code (Cranelift's output, or a `.cwasm` mapped from the
//! cache) into ordinary pages and then `mprotect`s them read-execute. Under
//! MemoryDenyWriteExecute that fails ("unable to make memory executable"): memory
//! that was not executable may not become executable. A *new* mapping that is
//! read-execute and never writable is allowed, though. So with
//! [`CodeMemory::Memfd`] the code pages are copied into a memfd, and that memfd is
//! mapped read-execute (`MAP_PRIVATE | MAP_FIXED`) over the very same addresses: the
//! same bytes at the same place, now executable, never writable-and-executable at any
//! moment. The memfd's descriptor is closed at once (the mapping keeps it alive);
//! the code costs its size in shared memory (shmem) instead of anonymous or
//! page-cache pages, once per compiled component, whatever number of instances run it.
//!
//! It is used only where it is needed ([`CodeMemory::Auto`], the default): the
//! engine probes once, at creation, whether a fresh anonymous page may be
//! `mprotect`ed executable. Everywhere else wasmtime's own code loading runs
//! unchanged (the `.cwasm` cache stays a lazily paged file mapping). Calls cost the
//! same either way (`tests/mdwe.rs` measures it): the same machine code, in 4 KiB
//! pages at the same addresses; only loading pays for the copy.

use std::io;
use std::sync::Arc;

/// How a [`Runtime`](crate::Runtime) makes compiled plugin code executable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CodeMemory {
    /// [`Memfd`](Self::Memfd) where memory may not become executable
    /// (MemoryDenyWriteExecute), [`Mprotect`](Self::Mprotect) elsewhere. Probed once
    /// when the runtime is created.
    #[default]
    Auto,
    /// wasmtime's own: `mprotect` the code pages read-execute. Fails to load any
    /// plugin under MemoryDenyWriteExecute.
    Mprotect,
    /// Map the code read-execute afresh from a memfd (Linux only). Works with or
    /// without MemoryDenyWriteExecute.
    Memfd,
}

/// Whether (and why) this process refuses to make memory executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecGain {
    /// `prctl(PR_GET_MDWE)`: the process has `PR_MDWE_REFUSE_EXEC_GAIN` set.
    pub prctl_mdwe: bool,
    /// `mprotect(PROT_READ | PROT_EXEC)` of a fresh anonymous page was refused (by
    /// MDWE, systemd's seccomp filter, or a security module), with this error.
    pub refused: Option<String>,
}

impl ExecGain {
    /// Probes the current process: one page mapped, `mprotect`ed, unmapped.
    pub fn probe() -> Self {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: PR_GET_MDWE takes no pointers; unused arguments must be 0.
            let zero = 0 as libc::c_ulong;
            let mdwe = unsafe { libc::prctl(libc::PR_GET_MDWE, zero, zero, zero, zero) };
            let prctl_mdwe =
                mdwe > 0 && (mdwe as libc::c_uint) & libc::PR_MDWE_REFUSE_EXEC_GAIN != 0;
            ExecGain {
                prctl_mdwe,
                refused: sys::mprotect_exec_refused(),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            ExecGain {
                prctl_mdwe: false,
                refused: None,
            }
        }
    }

    /// Whether memory may not become executable here.
    pub fn is_refused(&self) -> bool {
        self.refused.is_some()
    }
}

impl CodeMemory {
    /// The mode to use in this process: `Auto` resolved by `gain` (the probe).
    pub(crate) fn resolve(self, gain: &ExecGain) -> CodeMemory {
        match self {
            CodeMemory::Auto if gain.is_refused() => CodeMemory::Memfd,
            CodeMemory::Auto => CodeMemory::Mprotect,
            other => other,
        }
    }

    /// The hook to install in wasmtime's `Config` for this (resolved) mode.
    pub(crate) fn hook(self) -> anyhow::Result<Option<Arc<dyn wasmtime::CustomCodeMemory>>> {
        match self {
            CodeMemory::Auto | CodeMemory::Mprotect => Ok(None),
            #[cfg(target_os = "linux")]
            CodeMemory::Memfd => Ok(Some(Arc::new(sys::MemfdCode::new()?))),
            #[cfg(not(target_os = "linux"))]
            CodeMemory::Memfd => anyhow::bail!("memfd code memory needs Linux"),
        }
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use super::*;

    /// `MFD_NOEXEC_SEAL` (Linux 6.3): the memfd can never be `execve`d. Older kernels
    /// refuse the flag (EINVAL); then it is created without.
    const MFD_NOEXEC_SEAL: libc::c_uint = 0x0008;

    fn page_size() -> usize {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 { page as usize } else { 4096 }
    }

    /// The error of `mprotect(PROT_READ | PROT_EXEC)` on a fresh anonymous page, if
    /// refused. A failure to map the page at all is no verdict (`None`).
    pub(super) fn mprotect_exec_refused() -> Option<String> {
        let page = page_size();
        // SAFETY: a fresh private anonymous mapping, touched by nobody else, unmapped
        // before returning.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return None;
            }
            let refused = (libc::mprotect(p, page, libc::PROT_READ | libc::PROT_EXEC) != 0)
                .then(|| io::Error::last_os_error().to_string());
            libc::munmap(p, page);
            refused
        }
    }

    /// wasmtime's custom code-memory hook: code pages replaced by a read-execute
    /// private mapping of a memfd holding the same bytes.
    pub(super) struct MemfdCode {
        page: usize,
    }

    impl MemfdCode {
        pub(super) fn new() -> anyhow::Result<Self> {
            let page = page_size();
            anyhow::ensure!(page.is_power_of_two(), "odd page size {page}");
            Ok(MemfdCode { page })
        }

        fn span(&self, ptr: *const u8, len: usize) -> io::Result<usize> {
            if !(ptr as usize).is_multiple_of(self.page) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("code at {ptr:p} is not page-aligned"),
                ));
            }
            // wasmtime pads the text section to whole pages (and its mapping is whole
            // pages); round up all the same, so that every page holding code is mapped.
            Ok(len.div_ceil(self.page) * self.page)
        }

        fn memfd() -> io::Result<libc::c_int> {
            let name = c"wasmbgp-plugin-code";
            // SAFETY: `name` is NUL-terminated; the flags are plain bits.
            let fd =
                unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | MFD_NOEXEC_SEAL) };
            if fd >= 0 {
                return Ok(fd);
            }
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EINVAL) {
                return Err(error);
            }
            // SAFETY: as above.
            let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
            if fd >= 0 {
                Ok(fd)
            } else {
                Err(io::Error::last_os_error())
            }
        }

        /// Copies `[ptr, ptr + len)` into a new memfd and maps it read-execute over the
        /// same range.
        ///
        /// # Safety
        /// The range must be readable memory of a mapping the caller owns exclusively
        /// (wasmtime's code image), which no one writes to any more.
        unsafe fn publish(&self, ptr: *const u8, len: usize) -> io::Result<()> {
            let len = self.span(ptr, len)?;
            if len == 0 {
                return Ok(());
            }
            let fd = Self::memfd()?;
            // SAFETY: `fd` is ours; it is closed on every path below.
            let result = unsafe { Self::fill_and_map(fd, ptr, len) };
            // SAFETY: `fd` is a descriptor we opened; the mapping keeps the memfd alive.
            unsafe { libc::close(fd) };
            result
        }

        unsafe fn fill_and_map(fd: libc::c_int, ptr: *const u8, len: usize) -> io::Result<()> {
            let mut done = 0usize;
            while done < len {
                // SAFETY: `ptr + done .. ptr + len` is readable (caller's contract).
                let n = unsafe {
                    libc::pwrite(fd, ptr.add(done).cast(), len - done, done as libc::off_t)
                };
                match n {
                    n if n > 0 => done += n as usize,
                    0 => return Err(io::Error::new(io::ErrorKind::WriteZero, "memfd write")),
                    _ => {
                        let e = io::Error::last_os_error();
                        if e.kind() != io::ErrorKind::Interrupted {
                            return Err(e);
                        }
                    }
                }
            }
            // SAFETY: MAP_FIXED replaces exactly the pages of the caller's code image
            // with a mapping holding the same bytes; nothing else lives there.
            let mapped = unsafe {
                libc::mmap(
                    ptr as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_EXEC,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    fd,
                    0,
                )
            };
            if mapped == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            if !std::ptr::eq(mapped.cast_const().cast::<u8>(), ptr) {
                return Err(io::Error::other("memfd code mapped at the wrong address"));
            }
            Ok(())
        }
    }

    impl wasmtime::CustomCodeMemory for MemfdCode {
        fn required_alignment(&self) -> usize {
            self.page
        }

        fn publish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
            // SAFETY: wasmtime hands over its own code image, already read-only and no
            // longer written (the documented contract of this hook).
            unsafe { self.publish(ptr, len) }.map_err(|e| {
                wasmtime::Error::msg(format!(
                    "mapping {len} bytes of plugin code read-execute from a memfd: {e}"
                ))
            })
        }

        fn unpublish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
            // Back to read-write (copy-on-write of the private mapping): dropping the
            // execute permission is allowed under MemoryDenyWriteExecute.
            let len = self.span(ptr, len)?;
            if len == 0 {
                return Ok(());
            }
            // SAFETY: wasmtime's own code range, no longer running (hook contract).
            if unsafe {
                libc::mprotect(
                    ptr as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            } != 0
            {
                return Err(wasmtime::Error::msg(format!(
                    "making plugin code writable again: {}",
                    io::Error::last_os_error()
                )));
            }
            Ok(())
        }
    }
}
