//! Online backups of a SQLite drill: a consistent copy of the database file, taken with
//! SQLite's backup API while the engine and flag submission keep writing.
//!
//! The copy is written to a hidden temporary file beside the target, checked, synced and only
//! then given the target's name, so a failed or interrupted backup leaves no half-written file
//! under it. It is created with mode 0600 from the start: it holds the drill's keys.
//!
//! This is the crate's only unsafe code: the backup API is reached through `libsqlite3-sys`
//! (the same SQLite sqlx links) on handles locked out of sqlx's connection workers.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use gongfang_core::Tick;
use libsqlite3_sys as ffi;
use rand::Rng;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sea_orm::sqlx::{Connection, Row};

use crate::{Backend, Result, Store, StoreError};

/// Pages copied per step (4 MiB at SQLite's default 4 KiB page size). Between steps the
/// source is released, so the copy never holds the database for long.
const PAGES_PER_STEP: u32 = 1024;
/// The pause between two steps, so a backup leaves the disk and the runtime to the drill.
const PAUSE_BETWEEN_STEPS: Duration = Duration::from_millis(2);
/// SQLite starts a stepped copy again when another connection writes between two steps, which
/// a live drill does many times a second. After this many restarts the rest is copied in one
/// step: one read transaction, which in WAL mode (the store's) blocks no writer.
const MAX_RESTARTS: u32 = 2;
/// How long a step may keep finding the source locked before the backup gives up.
const BUSY_GIVE_UP: Duration = Duration::from_secs(60);
/// The wait before trying a locked source again.
const BUSY_RETRY: Duration = Duration::from_millis(50);

/// What a finished backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    /// Size of the copy, in bytes.
    pub bytes: u64,
    /// Database pages copied.
    pub pages: u32,
    /// The latest tick the copy holds as closed; a drill started on it resumes after it.
    pub latest_closed_tick: Option<Tick>,
    /// How many times SQLite started the copy again because the drill wrote between steps.
    pub restarts: u32,
}

impl Store {
    /// Copies this SQLite database, as it stands at one moment, to the new file `out`, while
    /// other connections keep writing. Refuses a PostgreSQL store and an `out` that exists.
    ///
    /// The copy holds every transaction committed before the backup began (every flag already
    /// answered `OK`), and no part of one committed later.
    pub async fn backup_to(&self, out: &Path) -> Result<BackupSummary> {
        self.backup_in_steps(out, PAGES_PER_STEP).await
    }

    /// [`Store::backup_to`], copying `pages_per_step` pages per step (at least one) instead of
    /// the default: smaller steps hold the source for shorter spells and restart more often.
    #[tracing::instrument(skip(self), fields(out = %out.display()))]
    pub async fn backup_in_steps(&self, out: &Path, pages_per_step: u32) -> Result<BackupSummary> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::BackupNotSqlite);
        }
        if out.symlink_metadata().is_ok() {
            return Err(StoreError::BackupExists(out.to_owned()));
        }
        let partial = Partial::create(out)?;
        let per_step = i32::try_from(pages_per_step.max(1)).unwrap_or(i32::MAX);
        let (pages, restarts, latest_closed_tick) = self.copy_into(&partial.path, per_step).await?;
        let bytes = partial.finish(out)?;
        tracing::debug!(bytes, pages, restarts, ?latest_closed_tick, "backup written");
        Ok(BackupSummary { bytes, pages, latest_closed_tick, restarts })
    }

    /// Runs the backup into the (empty) file `dest`, checks the copy and reads its latest
    /// closed tick. Returns the pages copied and the restarts.
    async fn copy_into(&self, dest: &Path, per_step: i32) -> Result<(u32, u32, Option<Tick>)> {
        let options = SqliteConnectOptions::new()
            .filename(dest)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Delete)
            .synchronous(SqliteSynchronous::Full);
        let mut target = SqliteConnection::connect_with(&options).await.map_err(backup_error)?;
        let mut source = self.db.get_sqlite_connection_pool().acquire().await.map_err(backup_error)?;
        let copied = {
            let mut source = source.lock_handle().await.map_err(backup_error)?;
            let mut target = target.lock_handle().await.map_err(backup_error)?;
            step_until_done(Raw(source.as_raw_handle()), Raw(target.as_raw_handle()), per_step).await
        };
        drop(source);
        let copied = match copied {
            Ok(copied) => copied,
            Err(e) => {
                let _ = target.close().await;
                return Err(e);
            }
        };
        let checked = check_copy(&mut target).await;
        target.close().await.map_err(backup_error)?;
        let latest = checked?;
        Ok((copied.0, copied.1, latest))
    }
}

/// A SQLite object (a connection or a backup) used across the backup's awaits.
struct Raw<T>(NonNull<T>);

// SAFETY: the two connections are used only while they are locked out of their sqlx workers
// (the locks live in the future that owns these values, and outlive them), so no other
// thread touches them meanwhile; SQLite, built threadsafe, lets a connection and its backup
// object move between threads when they are not used concurrently.
unsafe impl<T> Send for Raw<T> {}

/// An `sqlite3_backup` object: finished when dropped, also when the backup future is dropped
/// half-way. It must be dropped while both connections' handles are still locked.
struct BackupHandle(Raw<ffi::sqlite3_backup>);

impl Drop for BackupHandle {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `sqlite3_backup_init` and is finished exactly once.
        unsafe { ffi::sqlite3_backup_finish(self.0.0.as_ptr()) };
    }
}

/// Copies every page of `source` into `target` in steps; returns the pages and restarts.
async fn step_until_done(source: Raw<ffi::sqlite3>, target: Raw<ffi::sqlite3>, per_step: i32) -> Result<(u32, u32)> {
    // SAFETY: both handles are open and locked for this function's whole run; "main" names
    // each connection's database.
    let raw =
        unsafe { ffi::sqlite3_backup_init(target.0.as_ptr(), c"main".as_ptr(), source.0.as_ptr(), c"main".as_ptr()) };
    let Some(raw) = NonNull::new(raw) else {
        // SAFETY: the error of a failed init is held by the target connection.
        return Err(StoreError::Backup(unsafe { message(ffi::sqlite3_errmsg(target.0.as_ptr())) }));
    };
    let backup = BackupHandle(Raw(raw));
    let mut per_step = per_step;
    let (mut restarts, mut copied_before, mut busy_since) = (0u32, 0i64, None::<Instant>);
    loop {
        // SAFETY: `backup` is live until dropped at the end of this function.
        let (rc, remaining, total) = unsafe {
            let rc = ffi::sqlite3_backup_step(backup.0.0.as_ptr(), per_step);
            (rc, ffi::sqlite3_backup_remaining(backup.0.0.as_ptr()), ffi::sqlite3_backup_pagecount(backup.0.0.as_ptr()))
        };
        match rc {
            ffi::SQLITE_DONE => break,
            ffi::SQLITE_OK => {
                busy_since = None;
                let copied = i64::from(total) - i64::from(remaining);
                if copied < copied_before {
                    restarts += 1;
                    if restarts >= MAX_RESTARTS {
                        per_step = -1;
                    }
                }
                copied_before = copied;
                tokio::time::sleep(PAUSE_BETWEEN_STEPS).await;
            }
            ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED => {
                let since = *busy_since.get_or_insert_with(Instant::now);
                if since.elapsed() > BUSY_GIVE_UP {
                    return Err(StoreError::Backup(format!(
                        "the database stayed locked for {} s",
                        BUSY_GIVE_UP.as_secs()
                    )));
                }
                tokio::time::sleep(BUSY_RETRY).await;
            }
            // SAFETY: `sqlite3_errstr` returns a static string for any code.
            rc => return Err(StoreError::Backup(unsafe { message(ffi::sqlite3_errstr(rc)) })),
        }
    }
    // SAFETY: as above; the page count stays readable until the object is finished.
    let pages = unsafe { ffi::sqlite3_backup_pagecount(backup.0.0.as_ptr()) };
    // SAFETY: finishing takes the object; `forget` keeps `Drop` from finishing it again.
    let rc = unsafe { ffi::sqlite3_backup_finish(backup.0.0.as_ptr()) };
    std::mem::forget(backup);
    if rc != ffi::SQLITE_OK {
        // SAFETY: the error of a failed finish is held by the target connection.
        return Err(StoreError::Backup(unsafe { message(ffi::sqlite3_errmsg(target.0.as_ptr())) }));
    }
    Ok((u32::try_from(pages).unwrap_or_default(), restarts))
}

/// SAFETY: `text` must be null or point to a NUL-terminated string that outlives the call.
unsafe fn message(text: *const std::ffi::c_char) -> String {
    if text.is_null() {
        return "unknown SQLite error".to_owned();
    }
    // SAFETY: the caller's promise.
    unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned()
}

/// Checks the copy's structure and reads the latest tick it holds as closed.
async fn check_copy(copy: &mut SqliteConnection) -> Result<Option<Tick>> {
    let check: String =
        sea_orm::sqlx::query("PRAGMA quick_check").fetch_one(&mut *copy).await.map_err(backup_error)?.get(0);
    if check != "ok" {
        return Err(StoreError::Backup(format!("the copy failed SQLite's quick check: {check}")));
    }
    let latest: Option<i64> = sea_orm::sqlx::query("SELECT MAX(tick) FROM ticks WHERE closed_at IS NOT NULL")
        .fetch_one(&mut *copy)
        .await
        .map_err(backup_error)?
        .get(0);
    Ok(latest.and_then(|t| u32::try_from(t).ok()).map(Tick))
}

fn backup_error(e: sea_orm::sqlx::Error) -> StoreError {
    StoreError::Backup(e.to_string())
}

/// The temporary file a backup is written to, beside its target; removed when dropped
/// unless it became the target.
struct Partial {
    path: PathBuf,
    done: bool,
}

impl Partial {
    /// Creates the empty temporary file (mode 0600) beside `out`.
    fn create(out: &Path) -> Result<Partial> {
        let name = out.file_name().ok_or_else(|| StoreError::BackupIo {
            path: out.to_owned(),
            error: io::Error::new(io::ErrorKind::InvalidInput, "the backup needs a file name"),
        })?;
        let mut hidden = std::ffi::OsString::from(".");
        hidden.push(name);
        hidden.push(format!(".{:08x}.partial", rand::rng().random::<u32>()));
        let path = out.with_file_name(hidden);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|f| f.set_permissions(std::fs::Permissions::from_mode(0o600)))
            .map_err(|error| StoreError::BackupIo { path: out.to_owned(), error })?;
        Ok(Partial { path, done: false })
    }

    /// Syncs the finished copy and gives it the name `out`, never replacing a file that
    /// appeared there meanwhile. Returns its size.
    fn finish(mut self, out: &Path) -> Result<u64> {
        let io_error = |error| StoreError::BackupIo { path: out.to_owned(), error };
        let file = std::fs::File::open(&self.path).map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        let bytes = file.metadata().map_err(io_error)?.len();
        // A hard link is a rename that refuses an existing target.
        match std::fs::hard_link(&self.path, out) {
            Ok(()) => std::fs::remove_file(&self.path).map_err(io_error)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StoreError::BackupExists(out.to_owned()));
            }
            // A file system without hard links: the target was absent when the backup began.
            Err(_) => std::fs::rename(&self.path, out).map_err(io_error)?,
        }
        self.done = true;
        let folder = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(folder).and_then(|d| d.sync_all()).map_err(io_error)?;
        Ok(bytes)
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
            // What SQLite may have left beside a copy it was writing.
            for suffix in ["-journal", "-wal", "-shm"] {
                let mut side = self.path.clone().into_os_string();
                side.push(suffix);
                let _ = std::fs::remove_file(side);
            }
        }
    }
}
