//! Making a plan real: a tree of files (`tree`), written as a directory or
//! as an image (`image`); checking an image against a plan (`verify`); and
//! the line protocol the generator hooks translate (`lines`).

pub mod append;
pub mod image;
pub mod inspect;
pub mod lines;
pub mod tree;
pub mod verify;

/// Where dracut keeps its hooks in an image (059: /lib, usually a link to
/// /usr/lib; dracut-ng: /var/lib).
pub const DRACUT_HOOK_DIRS: &[&str] = &[
    "usr/lib/dracut/hooks",
    "lib/dracut/hooks",
    "var/lib/dracut/hooks",
];
