//! Hard links in an archive as the kernel makes them (init/initramfs.c,
//! `maybe_link`): within one archive (the table is freed at each trailer),
//! regular files with nlink >= 2 and the same (ino, devmajor, devminor) are
//! names of one inode. The kernel writes each entry's data into that inode,
//! truncating it only when the entry has data, so every name ends holding
//! the data last written. Generators write the data once, with the last
//! name, and the earlier names with size 0 (GNU cpio over a tree dracut ran
//! `hardlink` on).
//!
//! A name is passed on once its inode's data is known: a name with data at
//! once, and every earlier name of its inode again with it; a name without
//! data at once when its inode has some, else when the data comes, or empty
//! at the trailer. Data is held only while its inode may still get names.

use super::Header;
use crate::cpio::HardLink;
use std::collections::BTreeMap;
use std::io::{self, Read};

type Visitor<'a> = dyn FnMut(&Header, &mut dyn Read) -> io::Result<()> + 'a;

#[derive(Default)]
struct Inode {
    /// The names seen, in archive order.
    names: Vec<Header>,
    /// The data last written, if any.
    data: Option<Vec<u8>>,
}

/// The inodes of one archive with more than one name.
#[derive(Default)]
pub struct Links {
    inodes: BTreeMap<(u32, u32, u32), Inode>,
}

impl Links {
    /// One entry: `link` is set when it is a name of a linked inode;
    /// anything else goes to `visit` as it is.
    pub fn entry(
        &mut self,
        h: Header,
        link: Option<HardLink>,
        data: &mut dyn Read,
        visit: &mut Visitor<'_>,
    ) -> io::Result<()> {
        let Some(HardLink { key, nlink }) = link else {
            return visit(&h, data);
        };
        let inode = self.inodes.entry(key).or_default();
        if h.size > 0 {
            let mut bytes = Vec::new();
            data.read_to_end(&mut bytes)?;
            for earlier in &inode.names {
                visit(&sized(earlier, &bytes), &mut &bytes[..])?;
            }
            inode.data = Some(bytes);
        }
        if let Some(d) = &inode.data {
            visit(&sized(&h, d), &mut &d[..])?;
        }
        inode.names.push(h);
        if inode.data.is_some() && inode.names.len() >= nlink as usize {
            self.inodes.remove(&key);
        }
        Ok(())
    }

    /// At the trailer: the names of an inode no entry wrote to are empty
    /// files.
    pub fn finish(self, visit: &mut Visitor<'_>) -> io::Result<()> {
        for inode in self.inodes.into_values().filter(|i| i.data.is_none()) {
            for h in &inode.names {
                visit(h, &mut io::empty())?;
            }
        }
        Ok(())
    }
}

fn sized(h: &Header, data: &[u8]) -> Header {
    Header {
        size: data.len() as u64,
        ..h.clone()
    }
}
