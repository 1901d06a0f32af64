//! docket-slowfs: a FUSE passthrough filesystem whose syncs take as long as an SD card's, for the
//! benchmark's `pi` profile (docs/benchmarks.md, "The `pi` profile").
//!
//! `docket-slowfs --fsync-ms 5 BACKING MOUNTPOINT` mounts the directory BACKING at MOUNTPOINT and
//! serves until it is unmounted (`umount MOUNTPOINT`). Every operation passes through to BACKING;
//! each fsync, fdatasync and directory fsync syncs the real file and returns `--fsync-ms` after
//! it began (or when the real sync ends, if that is later). Syncs go one at a time, as on an SD
//! card (one command at a time: the Pi 4's host controller does no command queueing); reads,
//! writes and lookups go on meanwhile on the other threads. On exit it prints how many syncs it
//! served.
//!
//! It owns nothing but its table of inode numbers (the backing file's, with the root's swapped
//! for FUSE's 1) and its open files; it never touches docketd. Files only: no symlinks, device
//! nodes, xattrs or locks (the kernel keeps POSIX locks itself when a filesystem does not).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, DirEntryExt, FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use fuser::{
    BsdFileFlags, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, KernelConfig, LockOwner, MountOption, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

#[derive(Parser)]
#[command(about = "FUSE passthrough whose fsync is as slow as an SD card's (docket's pi bench)")]
struct Args {
    /// Milliseconds each fsync, fdatasync or directory fsync takes in all (the real sync included).
    #[arg(long, default_value_t = 5.0)]
    fsync_ms: f64,
    /// FUSE worker threads (a sync in progress holds one of them).
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// The real directory.
    backing: PathBuf,
    /// Where to mount it (an existing empty directory).
    mountpoint: PathBuf,
}

/// How long the kernel may cache attributes and entries: every change goes through this mount,
/// so the cache stays true.
const TTL: Duration = Duration::from_secs(1);
const O_ACCMODE: i32 = 3;
const O_RDONLY: i32 = 0;

struct SlowFs {
    root: PathBuf,
    /// The backing root's inode number (served as FUSE's root, 1; a backing 1 is served as it).
    root_ino: u64,
    delay: Duration,
    /// FUSE inode number → path under `root`.
    paths: Mutex<HashMap<u64, PathBuf>>,
    files: Mutex<HashMap<u64, Arc<File>>>,
    next_fh: AtomicU64,
    /// One sync at a time.
    card: Mutex<()>,
    syncs: Arc<AtomicU64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn kind(t: std::fs::FileType) -> FileType {
    if t.is_dir() {
        FileType::Directory
    } else if t.is_symlink() {
        FileType::Symlink
    } else if t.is_fifo() {
        FileType::NamedPipe
    } else if t.is_socket() {
        FileType::Socket
    } else if t.is_char_device() {
        FileType::CharDevice
    } else if t.is_block_device() {
        FileType::BlockDevice
    } else {
        FileType::RegularFile
    }
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH
    }
}

impl SlowFs {
    fn new(root: PathBuf, delay: Duration, syncs: Arc<AtomicU64>) -> std::io::Result<SlowFs> {
        let root_ino = std::fs::metadata(&root)?.ino();
        let paths = HashMap::from([(INodeNo::ROOT.0, PathBuf::new())]);
        Ok(SlowFs {
            root,
            root_ino,
            delay,
            paths: Mutex::new(paths),
            files: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            card: Mutex::new(()),
            syncs,
        })
    }

    /// The FUSE inode number of a backing one.
    fn ino(&self, backing: u64) -> u64 {
        match backing {
            b if b == self.root_ino => INodeNo::ROOT.0,
            b if b == INodeNo::ROOT.0 => self.root_ino,
            b => b,
        }
    }

    fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        let rel = lock(&self.paths).get(&ino.0).cloned();
        rel.map(|r| self.root.join(r)).ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.path(parent)?.join(name))
    }

    fn attr(&self, md: &Metadata) -> FileAttr {
        FileAttr {
            ino: INodeNo(self.ino(md.ino())),
            size: md.size(),
            blocks: md.blocks(),
            atime: time(md.atime(), md.atime_nsec()),
            mtime: time(md.mtime(), md.mtime_nsec()),
            ctime: time(md.ctime(), md.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind: kind(md.file_type()),
            perm: (md.mode() & 0o7777) as u16,
            nlink: md.nlink() as u32,
            uid: md.uid(),
            gid: md.gid(),
            rdev: md.rdev() as u32,
            blksize: md.blksize() as u32,
            flags: 0,
        }
    }

    /// Stats `path` and remembers its inode number's path.
    fn entry(&self, path: &Path) -> Result<FileAttr, Errno> {
        let md = std::fs::symlink_metadata(path)?;
        let a = self.attr(&md);
        if let Ok(rel) = path.strip_prefix(&self.root) {
            lock(&self.paths).insert(a.ino.0, rel.to_owned());
        }
        Ok(a)
    }

    fn file(&self, fh: FileHandle) -> Result<Arc<File>, Errno> {
        lock(&self.files).get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    fn keep(&self, f: File) -> FileHandle {
        let fh = self.next_fh.fetch_add(1, Relaxed);
        lock(&self.files).insert(fh, Arc::new(f));
        FileHandle(fh)
    }

    /// Syncs the real file and holds the card until the delay has passed since the sync began:
    /// each sync takes the delay in all (the real disk's own time included), or the real disk's
    /// time where that is longer.
    fn sync(&self, f: &File, datasync: bool) -> Result<(), Errno> {
        let _card = lock(&self.card);
        let t0 = std::time::Instant::now();
        let r = if datasync {
            f.sync_data()
        } else {
            f.sync_all()
        };
        std::thread::sleep(self.delay.saturating_sub(t0.elapsed()));
        self.syncs.fetch_add(1, Relaxed);
        Ok(r?)
    }

    fn setattr_inner(
        &self,
        path: &Path,
        fh: Option<FileHandle>,
        mode: Option<u32>,
        owner: (Option<u32>, Option<u32>),
        size: Option<u64>,
        times: (Option<TimeOrNow>, Option<TimeOrNow>),
    ) -> Result<FileAttr, Errno> {
        if let Some(m) = mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(m & 0o7777))?;
        }
        if owner.0.is_some() || owner.1.is_some() {
            std::os::unix::fs::lchown(path, owner.0, owner.1)?;
        }
        let open = || -> Result<Arc<File>, Errno> {
            match fh {
                Some(fh) => self.file(fh),
                None => Ok(Arc::new(OpenOptions::new().write(true).open(path)?)),
            }
        };
        if let Some(s) = size {
            open()?.set_len(s)?;
        }
        if times.0.is_some() || times.1.is_some() {
            let t = |x: TimeOrNow| match x {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            };
            let mut ft = std::fs::FileTimes::new();
            if let Some(a) = times.0 {
                ft = ft.set_accessed(t(a));
            }
            if let Some(m) = times.1 {
                ft = ft.set_modified(t(m));
            }
            File::open(path)?.set_times(ft)?;
        }
        self.entry(path)
    }
}

/// The backing file's open options: readable always (with the writeback cache the kernel reads
/// to fill partly written pages, even of files opened write-only), writable when asked.
fn options(flags: i32) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true).write(flags & O_ACCMODE != O_RDONLY);
    o
}

fn done(reply: ReplyEmpty, r: Result<(), Errno>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn entry_reply(reply: ReplyEntry, r: Result<FileAttr, Errno>) {
    match r {
        Ok(a) => reply.entry(&TTL, &a, Generation(0)),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for SlowFs {
    /// Writes go to the kernel's page cache and reach this process in batches (at the latest
    /// on fsync), as they reach an SD card's driver: without it every write(2) would be a round
    /// trip here, a cost no SD card has.
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        if config
            .add_capabilities(InitFlags::FUSE_WRITEBACK_CACHE)
            .is_err()
        {
            eprintln!("docket-slowfs: the kernel has no FUSE writeback cache; writes go through");
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        entry_reply(reply, self.child(parent, name).and_then(|p| self.entry(&p)));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let r = match fh.map(|fh| self.file(fh)) {
            Some(f) => f.and_then(|f| Ok(self.attr(&f.metadata()?))),
            None => self.path(ino).and_then(|p| self.entry(&p)),
        };
        match r {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let r = self
            .path(ino)
            .and_then(|p| self.setattr_inner(&p, fh, mode, (uid, gid), size, (atime, mtime)));
        match r {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self.child(parent, name).and_then(|p| {
            std::fs::DirBuilder::new()
                .mode(mode & !umask & 0o7777)
                .create(&p)?;
            self.entry(&p)
        });
        entry_reply(reply, r);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        done(reply, self.remove(parent, name, false));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        done(reply, self.remove(parent, name, true));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        let r = (|| {
            let (from, to) = (self.child(parent, name)?, self.child(newparent, newname)?);
            std::fs::rename(&from, &to)?;
            let (old, new) = (rel(&self.root, &from), rel(&self.root, &to));
            for p in lock(&self.paths).values_mut() {
                if let Ok(rest) = p.strip_prefix(&old) {
                    *p = if rest.as_os_str().is_empty() {
                        new.clone()
                    } else {
                        new.join(rest)
                    };
                }
            }
            self.entry(&to).map(|_| ())
        })();
        done(reply, r);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.path(ino).and_then(|p| Ok(options(flags.0).open(p)?)) {
            Ok(f) => reply.opened(self.keep(f), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = self.child(parent, name).and_then(|p| {
            let f = options(flags)
                .create(true)
                .mode(mode & !umask & 0o7777)
                .open(&p)?;
            Ok((self.entry(&p)?, f))
        });
        match r {
            Ok((a, f)) => reply.created(&TTL, &a, Generation(0), self.keep(f), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let r = self.file(fh).and_then(|f| {
            let mut buf = vec![0u8; size as usize];
            let mut n = 0;
            while n < buf.len() {
                match f.read_at(&mut buf[n..], offset + n as u64)? {
                    0 => break,
                    k => n += k,
                }
            }
            buf.truncate(n);
            Ok(buf)
        });
        match r {
            Ok(b) => reply.data(&b),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = self
            .file(fh)
            .and_then(|f| Ok(f.write_all_at(data, offset)?));
        match r {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        lock(&self.files).remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        done(reply, self.file(fh).and_then(|f| self.sync(&f, datasync)));
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let list = self.path(ino).and_then(|p| {
            let mut v = vec![
                (ino.0, FileType::Directory, ".".into()),
                (ino.0, FileType::Directory, "..".into()),
            ];
            for e in std::fs::read_dir(p)? {
                let e = e?;
                v.push((self.ino(e.ino()), kind(e.file_type()?), e.file_name()));
            }
            Ok(v)
        });
        match list {
            Ok(v) => {
                for (i, (n, k, name)) in v.into_iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(n), (i + 1) as u64, k, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = self
            .path(ino)
            .and_then(|p| Ok(File::open(p)?))
            .and_then(|d| self.sync(&d, datasync));
        done(reply, r);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match rustix::fs::statvfs(&self.root) {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(Errno::from_i32(e.raw_os_error())),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        done(
            reply,
            self.path(ino).and_then(|p| self.entry(&p).map(|_| ())),
        );
    }
}

impl SlowFs {
    fn remove(&self, parent: INodeNo, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let p = self.child(parent, name)?;
        let ino = std::fs::symlink_metadata(&p).map(|m| self.ino(m.ino()))?;
        if dir {
            std::fs::remove_dir(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
        let mut paths = lock(&self.paths);
        if paths.get(&ino) == Some(&rel(&self.root, &p)) {
            paths.remove(&ino);
        }
        Ok(())
    }
}

fn rel(root: &Path, p: &Path) -> PathBuf {
    p.strip_prefix(root).unwrap_or(p).to_owned()
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    anyhow::ensure!(a.fsync_ms >= 0.0, "--fsync-ms must not be negative");
    let syncs = Arc::new(AtomicU64::new(0));
    let root = std::fs::canonicalize(&a.backing)?;
    let fs = SlowFs::new(
        root,
        Duration::from_secs_f64(a.fsync_ms / 1000.0),
        syncs.clone(),
    )?;
    let mut cfg = Config::default();
    cfg.mount_options = vec![
        MountOption::FSName("docket-slowfs".into()),
        MountOption::Subtype("docket-slowfs".into()),
    ];
    cfg.n_threads = Some(a.threads.max(2));
    fuser::mount(fs, &a.mountpoint, &cfg)?;
    eprintln!(
        "docket-slowfs: {} syncs, each at least {} ms",
        syncs.load(Relaxed),
        a.fsync_ms
    );
    Ok(())
}
