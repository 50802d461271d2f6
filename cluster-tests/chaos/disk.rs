//! A node's data dir on a small tmpfs of its own, so that the disk-full fault fills one node's file
//! system only. Unmounted when dropped.

use std::path::{Path, PathBuf};

use super::lab::run;

pub struct SmallDisk {
    pub mount_point: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size_mib` MiB at `mount_point` (created when missing), private to root.
    pub fn mount(mount_point: &Path, size_mib: u64) -> SmallDisk {
        std::fs::create_dir_all(mount_point).expect("mount point");
        let options = format!("size={size_mib}m,mode=0700");
        run("mount", &["-t", "tmpfs", "-o", &options, "lmchaos", &mount_point.to_string_lossy()]);
        SmallDisk { mount_point: mount_point.to_owned() }
    }

    fn filler(&self) -> PathBuf {
        self.mount_point.join("filler")
    }

    /// Writes a file until the file system is full.
    pub fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.filler()).expect("filler");
        let block = vec![0xA5u8; 1 << 20];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
    }

    /// Frees what [`SmallDisk::fill`] took.
    pub fn free(&self) {
        let _ = std::fs::remove_file(self.filler());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.mount_point).status();
    }
}
