//! Linux: ELF shared objects, `dlopen`, a private directory under the temp dir.

use std::fs::{DirBuilder, Metadata};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

pub const BINARY_FORMAT: object::BinaryFormat = object::BinaryFormat::Elf;

pub fn architecture() -> object::Architecture {
    #[cfg(target_arch = "x86_64")]
    return object::Architecture::X86_64;
    #[cfg(target_arch = "aarch64")]
    return object::Architecture::Aarch64;
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return object::Architecture::Unknown;
}

/// The file cargo writes for a `cdylib` crate named `name`.
pub fn library_file_name(name: &str) -> String {
    format!("lib{name}.so")
}

pub fn inode(meta: &Metadata) -> u64 {
    meta.ino()
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Refuses a directory that another user owns or that others may write to: anyone who can write
/// there could swap the bytes we are about to load.
pub fn check_private(dir: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|err| format!("cannot inspect {}: {err}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if meta.uid() != current_uid() {
        return Err(format!(
            "{} is owned by uid {}, not by this user (uid {}); refusing to load patches from it",
            dir.display(),
            meta.uid(),
            current_uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by group or others (mode {:o}); refusing to load patches from it. \
             Make it private: chmod 700 {}",
            dir.display(),
            meta.mode() & 0o777,
            dir.display()
        ));
    }
    Ok(())
}

/// Checks that `file` is a regular file (not a link to somewhere else) that this user owns and
/// that only this user can write.
pub fn check_owned_file(file: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(file)
        .map_err(|err| format!("cannot inspect {}: {err}", file.display()))?;
    if !meta.is_file() || meta.uid() != current_uid() || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is not a private file of this user",
            file.display()
        ));
    }
    Ok(())
}

/// A private directory `<tmp>/hotswap-<uid>/<name>`, mode 0700, for this process; `name` must
/// end with the process id (`1234`, `cli-1234`). Directories of processes that no longer run
/// (a crash between copy and delete) are removed first.
pub fn private_dir(name: &str) -> Result<PathBuf, String> {
    let base = std::env::temp_dir().join(format!("hotswap-{}", current_uid()));
    let mut builder = DirBuilder::new();
    builder.mode(0o700);
    if let Err(err) = builder.create(&base) {
        if err.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(format!("cannot create {}: {err}", base.display()));
        }
    }
    check_private(&base)?;
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let stale = entry
                .file_name()
                .to_str()
                .and_then(|name| name.rsplit('-').next())
                .and_then(|pid| pid.parse::<i32>().ok())
                .is_some_and(|pid| !process_alive(pid));
            if stale {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let own = base.join(name);
    let _ = std::fs::remove_dir_all(&own);
    builder
        .create(&own)
        .map_err(|err| format!("cannot create {}: {err}", own.display()))?;
    check_private(&own)?;
    remove_at_exit(&own);
    Ok(own)
}

/// Removes the private directories of this process when it exits normally (a crash leaves
/// them for the next start's sweep).
fn remove_at_exit(dir: &Path) {
    use std::sync::Mutex;
    static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    extern "C" fn remove_all() {
        if let Ok(dirs) = DIRS.try_lock() {
            for dir in dirs.iter() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    let mut dirs = DIRS.lock().unwrap_or_else(|e| e.into_inner());
    if dirs.is_empty() {
        // SAFETY: `remove_all` is an `extern "C"` function with no arguments that cannot
        // unwind: `try_lock` and `remove_dir_all` report failure by value, never by panicking.
        unsafe {
            libc::atexit(remove_all);
        }
    }
    dirs.push(dir.to_path_buf());
}

/// Where `linkme` puts the registrations of `hotswap::__private::ENTRIES` and `STATES`.
pub const ENTRIES_SECTION: &str = "linkme_ENTRIES";
pub const STATES_SECTION: &str = "linkme_STATES";

/// `dlopen` with every symbol bound now (a missing one fails here, not mid-call) and nothing
/// added to the global namespace. Returns the library and the address it was loaded at (what
/// its section addresses are relative to).
pub fn open_library(path: &Path) -> Result<(libloading::Library, usize), String> {
    use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
    // SAFETY: loading runs the library's initialisers. The file was checked to be a complete
    // shared object for this machine carrying a hotswap manifest, i.e. built from the program's
    // own hot crate, whose initialisers are the program's own code.
    let library = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }
        .map_err(|err| super::error_chain(&err))?;
    let handle = library.into_raw();
    let mut map: *mut LinkMap = std::ptr::null_mut();
    // SAFETY: `handle` is a live handle from `dlopen`; RTLD_DI_LINKMAP writes one pointer to the
    // library's `struct link_map` into `map`.
    let found = unsafe {
        libc::dlinfo(
            handle,
            libc::RTLD_DI_LINKMAP,
            (&mut map as *mut *mut LinkMap).cast(),
        )
    };
    // SAFETY: `handle` came from `into_raw` above and is given back exactly once.
    let library = unsafe { Library::from_raw(handle) };
    // SAFETY: on success `map` points to the loader's live `link_map` for this library, whose
    // first field is `l_addr`.
    let base = match unsafe { map.as_ref() } {
        Some(map) if found == 0 => map.l_addr,
        _ => return Err("the dynamic loader did not say where it loaded the library".into()),
    };
    Ok((library.into(), base))
}

/// The image hotswap's runtime is linked into: the main executable of a program, or the shared
/// library a foreign host loaded (`cargo hotswap run --lib`). Patches are linked against it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnImage {
    /// The lowest address of its loadable segments (`dlpi_addr` + the lowest `p_vaddr` of its
    /// `PT_LOAD` headers).
    pub lowest: usize,
    /// One past the highest address of its loadable segments.
    pub highest: usize,
    /// `dlpi_addr`: what its link-time addresses are offset by at run time.
    pub load_bias: usize,
    /// A shared library, not the main executable (the first object the loader lists).
    pub library: bool,
    /// The file the loader mapped: `dlpi_name` for a library, `/proc/self/exe`'s target for
    /// the executable.
    pub path: std::path::PathBuf,
}

/// What [`own_image`]'s callback looks for and finds.
struct Search {
    /// An address inside the image: the address of a function of this module.
    inside: usize,
    /// Objects seen so far (the first is the executable).
    seen: usize,
    found: Option<OwnImage>,
}

/// Where the image holding this code is, from the loader's list of loaded objects: the one
/// whose loadable segments contain the address of a function of this module.
pub fn own_image() -> Option<OwnImage> {
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `dl_iterate_phdr` passes a valid `dl_phdr_info` for the duration of the call,
        // whose `dlpi_phdr` points to `dlpi_phnum` program headers of that object and whose
        // `dlpi_name` is a NUL-terminated string (empty for the executable); `data` is the
        // `Search` that `own_image` passed, alive and not otherwise borrowed during the
        // iteration. Nothing here can unwind (no allocation failure is caught: an abort).
        unsafe {
            let info = &*info;
            let search = &mut *data.cast::<Search>();
            let index = search.seen;
            search.seen += 1;
            let headers = if info.dlpi_phdr.is_null() {
                Default::default()
            } else {
                std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum))
            };
            let bias = info.dlpi_addr as usize;
            let loads = headers.iter().filter(|h| h.p_type == libc::PT_LOAD);
            let contains = loads.clone().any(|h| {
                let start = bias.wrapping_add(h.p_vaddr as usize);
                (start..start.wrapping_add(h.p_memsz as usize)).contains(&search.inside)
            });
            if !contains {
                return 0;
            }
            let lowest = loads.clone().map(|h| h.p_vaddr as usize).min().unwrap_or(0);
            let highest = loads
                .map(|h| (h.p_vaddr + h.p_memsz) as usize)
                .max()
                .unwrap_or(0);
            let name = if info.dlpi_name.is_null() {
                Default::default()
            } else {
                std::ffi::CStr::from_ptr(info.dlpi_name).to_bytes().to_vec()
            };
            let library = index > 0 && !name.is_empty();
            let path = if library {
                use std::os::unix::ffi::OsStringExt;
                std::path::PathBuf::from(std::ffi::OsString::from_vec(name))
            } else {
                std::path::PathBuf::new()
            };
            search.found = Some(OwnImage {
                lowest: bias.wrapping_add(lowest),
                highest: bias.wrapping_add(highest),
                load_bias: bias,
                library,
                path,
            });
        }
        1
    }
    let mut search = Search {
        inside: own_image as fn() -> Option<OwnImage> as usize,
        seen: 0,
        found: None,
    };
    // SAFETY: `visit` matches the callback type, never unwinds, and only writes through `data`,
    // which points to `search`, alive for the whole call.
    unsafe {
        libc::dl_iterate_phdr(Some(visit), (&mut search as *mut Search).cast());
    }
    let mut image = search.found?;
    if !image.library {
        image.path = std::fs::read_link("/proc/self/exe").ok()?;
    }
    Some(image)
}

/// The inode of the file mapped at `address` (page-aligned, the start of a mapping), from
/// `/proc/self/maps`: what the loader mapped, even if the path now names another file.
pub fn mapped_inode(address: usize) -> Option<u64> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let range = fields.next()?;
        let start = usize::from_str_radix(range.split_once('-')?.0, 16).ok()?;
        if start != address {
            return None;
        }
        let _perms = fields.next()?;
        let _offset = fields.next()?;
        let _device = fields.next()?;
        fields.next()?.parse().ok().filter(|&inode| inode != 0)
    })
}

/// The size of a page of memory.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|s| *s > 0)
        .unwrap_or(4096)
}

/// Maps `[start, start + len)` as inaccessible address space (`PROT_NONE`, no memory committed),
/// only if nothing is mapped anywhere in it: the kernel refuses (`MAP_FIXED_NOREPLACE`) rather
/// than replace a mapping. `start` and `len` must be page-aligned.
pub fn reserve_range(start: usize, len: usize) -> Result<(), String> {
    // SAFETY: with MAP_FIXED_NOREPLACE the kernel never replaces an existing mapping, so no
    // memory anything refers to is touched; the new mapping is anonymous, private and
    // inaccessible.
    let mapped = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE
                | libc::MAP_ANONYMOUS
                | libc::MAP_NORESERVE
                | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if mapped == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error().to_string());
    }
    if mapped as usize != start {
        // A kernel older than 4.17 ignores MAP_FIXED_NOREPLACE and takes the address as a hint.
        // SAFETY: `[mapped, mapped + len)` is the mapping just made, which nothing refers to.
        unsafe { libc::munmap(mapped, len) };
        return Err(format!(
            "the kernel placed it at {mapped:p} instead (no MAP_FIXED_NOREPLACE before Linux 4.17)"
        ));
    }
    Ok(())
}

/// Unmaps `[start, start + len)` (page-aligned), so that the loader may map a library there.
///
/// # Safety
/// The range must be a part of a range mapped by [`reserve_range`] that was not released before:
/// inaccessible memory of this process that nothing refers to.
pub unsafe fn release_range(start: usize, len: usize) -> Result<(), String> {
    // SAFETY: per the contract, the range is ours, `PROT_NONE`, and holds nothing anyone reads.
    if unsafe { libc::munmap(start as *mut libc::c_void, len) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(())
}

/// The start of glibc's `struct link_map` (`<link.h>`): only the load address is read.
#[repr(C)]
struct LinkMap {
    l_addr: usize,
}

/// Refuses a control channel whose other end runs as another user.
pub fn check_peer_is_same_user(stream: &std::os::unix::net::UnixStream) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes passed; the fd is a live socket.
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if result != 0 {
        return Err(format!(
            "cannot read the peer's credentials: {}",
            std::io::Error::last_os_error()
        ));
    }
    if cred.uid != current_uid() {
        return Err(format!(
            "the other end runs as uid {}, not this user (uid {}); refusing it",
            cred.uid,
            current_uid()
        ));
    }
    Ok(())
}
