//! A file's bytes mapped read-only, as libkmod maps its indexes
//! (`index_mm_open`): a lookup touches only the pages of the nodes it
//! visits, where reading the file whole copies every byte (the alias and
//! dependency indexes are megabytes; a plan visits a few hundred nodes).
//!
//! The mapping is private and read-only. A file truncated by another
//! process while mapped would fault on access (SIGBUS), as it would for
//! libkmod; depmod replaces its files by rename, which leaves a mapping
//! of the old file intact.

use std::io;
use std::ops::Deref;
use std::path::Path;

/// The bytes of a file: mapped, or (empty files, and where mapping fails)
/// read.
pub enum FileBytes {
    Mapped(Mapping),
    Read(Vec<u8>),
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m.bytes(),
            FileBytes::Read(v) => v,
        }
    }
}

/// A read-only private mapping of a whole file.
pub struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and owned; sharing `&[u8]` of it between
// threads is as safe as sharing any immutable slice.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` is a live PROT_READ mapping of `len` bytes, unmapped
        // only in Drop; the slice borrows `self`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map_capped`.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// The bytes of `path`, mapped, refusing files over `cap` bytes (as
/// `root::read_capped` does).
pub fn map_capped(path: &Path, cap: u64) -> io::Result<FileBytes> {
    use std::os::fd::AsRawFd;
    let (f, len) = crate::root::open_capped(path, cap)?;
    if len == 0 || !f.metadata()?.is_file() {
        return crate::root::read_capped(path, cap).map(FileBytes::Read);
    }
    // SAFETY: a fresh read-only private mapping of an open regular file;
    // the result is checked before use and owned by `Mapping`.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len as usize,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            f.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return crate::root::read_capped(path, cap).map(FileBytes::Read);
    }
    Ok(FileBytes::Mapped(Mapping {
        ptr,
        len: len as usize,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_what_the_file_holds_and_refuses_over_the_cap() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(&*map_capped(&p, 10).unwrap(), b"0123456789");
        assert!(map_capped(&p, 9).is_err());
        std::fs::write(&p, b"").unwrap();
        assert!(map_capped(&p, 10).unwrap().is_empty());
        assert!(map_capped(&d.path().join("missing"), 10).is_err());
    }
}
