//! `users.d/*.toml`: `[users]` entries kept beside the main file, one file per team or per
//! config-management role, so that no tool has to rewrite the packaged main file.
//!
//! The directory is `users.d` next to the main config file; when it is absent there are no
//! drop-ins, anything else wrong with it (a symlink, a file, a loose owner or mode) is an
//! error. Only names ending in `.toml` and not starting with `.` are read (editors' and
//! config-management tools' temporary files start with a dot), in byte order. Each file is
//! read through `secure_fs` like the main file, holds nothing but a `[users]` table with the
//! main file's entry syntax, and must be 0600 when it holds an offline secret. A user defined
//! twice, in two drop-ins or in the main file and a drop-in, is an error naming both files:
//! which entry would win is exactly what nobody should have to guess at a login.

use super::{Backend, ConfigError, MAX_FILE_BYTES, UserEntry, parse_users, toml_problem};
use crate::secure_fs::{self, FileError};
use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// The drop-in directory's name, beside the main config file.
pub const USERS_DIR: &str = "users.d";

/// More files than any fleet needs; every login reads them all.
pub const MAX_DROP_INS: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDropIn {
    #[serde(default)]
    users: toml::Table,
}

/// The drop-in directory that belongs to the main config file `main`.
pub fn users_dir(main: &Path) -> PathBuf {
    main.parent().unwrap_or(Path::new("/")).join(USERS_DIR)
}

/// Reads every drop-in of the main file `main` into `users`, which holds the main file's own
/// entries. Returns the files read, in the order read.
pub(super) fn merge_drop_ins(
    main: &Path,
    backend: Backend,
    users: &mut BTreeMap<String, UserEntry>,
) -> Result<Vec<PathBuf>, ConfigError> {
    let mut first = None;
    let read = walk(main, backend, users, &mut |error| {
        first = Some(error);
        ControlFlow::Break(())
    });
    first.map_or(Ok(read), Err)
}

/// `merge_drop_ins`, telling `on_error` each problem; it stops the walk or lets it go on to
/// the next user or file (a file with a problem adds no user).
pub(super) fn walk(
    main: &Path,
    backend: Backend,
    users: &mut BTreeMap<String, UserEntry>,
    on_error: &mut dyn FnMut(ConfigError) -> ControlFlow<()>,
) -> Vec<PathBuf> {
    let dir = users_dir(main);
    let mut read = Vec::new();
    let names = match drop_in_names(&dir) {
        Ok(names) => names,
        Err(error) => {
            let _ = on_error(error);
            return read;
        }
    };
    let mut defined_in: BTreeMap<String, PathBuf> =
        users.keys().map(|name| (name.clone(), main.to_path_buf())).collect();
    for name in names {
        let path = dir.join(&name);
        let entries = match read_drop_in(&path, backend) {
            Ok(entries) => entries,
            Err(error) => {
                if on_error(error).is_break() {
                    return read;
                }
                continue;
            }
        };
        for (user, entry) in entries {
            if let Some(first) = defined_in.get(&user) {
                let error = ConfigError::new(
                    &path,
                    format!("[users] {user} is already defined in {}; define each user in one file", first.display()),
                );
                if on_error(error).is_break() {
                    return read;
                }
                continue;
            }
            defined_in.insert(user.clone(), path.clone());
            users.insert(user, entry);
        }
        read.push(path);
    }
    read
}

/// The drop-in file names in `dir`, sorted; none when `dir` does not exist.
fn drop_in_names(dir: &Path) -> Result<Vec<String>, ConfigError> {
    let handle = match secure_fs::open_dir(dir) {
        Ok(handle) => handle,
        Err(error) if error.is_not_found() && error.path() == dir => return Ok(Vec::new()),
        Err(error) => return Err(ConfigError::file(error)),
    };
    let io = |errno| ConfigError::file(FileError::Io { path: dir.to_path_buf(), errno });
    // The checked O_PATH handle cannot be listed; "." through it is the very same directory.
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut listing = Dir::openat(&handle, ".", flags, Mode::empty()).map_err(io)?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_bytes();
        if name.starts_with(b".") || !name.ends_with(b".toml") {
            continue;
        }
        let Ok(name) = std::str::from_utf8(name) else {
            return Err(ConfigError::new(dir, "holds a .toml file whose name is not UTF-8; rename or remove it"));
        };
        if names.len() == MAX_DROP_INS {
            return Err(ConfigError::new(dir, format!("holds more than {MAX_DROP_INS} .toml files")));
        }
        names.push(name.to_owned());
    }
    names.sort();
    Ok(names)
}

/// One drop-in read and checked as a login reads it (owner, mode, symlinks, syntax, the
/// mode of a file holding offline secrets): its users. `pam-authy` checks its edits with it.
pub fn read_drop_in(path: &Path, backend: Backend) -> Result<BTreeMap<String, UserEntry>, ConfigError> {
    let file = secure_fs::read_file(path, MAX_FILE_BYTES).map_err(ConfigError::file)?;
    let text = std::str::from_utf8(&file.bytes).map_err(|_| ConfigError::new(path, "is not valid UTF-8"))?;
    let users = parse_drop_in(path, text, backend)?;
    if file.readable_by_group_or_other() && users.values().any(|user| user.offline_secret.is_some()) {
        return Err(ConfigError::new(
            path,
            format!("mode {:04o} lets group or other read the offline secrets it holds; use 0600", file.mode),
        ));
    }
    Ok(users)
}

/// The `[users]` of a drop-in's text; `path` names it in messages.
pub(super) fn parse_drop_in(
    path: &Path,
    text: &str,
    backend: Backend,
) -> Result<BTreeMap<String, UserEntry>, ConfigError> {
    let raw: RawDropIn = toml::from_str(text).map_err(|error| {
        let problem = toml_problem(text, &error);
        let problem = match problem.strip_suffix("unknown key (expected `users`)") {
            Some(line) => format!("{line}a users.d file holds only a [users] table"),
            None => problem,
        };
        ConfigError::new(path, problem)
    })?;
    parse_users(path, backend, raw.users)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::test_support::{private_dir, set_mode, write_file};
    use std::os::unix::fs::symlink;

    const MAIN: &str = "[api]\napi_key_file = \"/nonexistent\"\n";

    /// A private config dir with a main file (no secret inline) and an empty `users.d`.
    fn config_dir(main_users: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = private_dir();
        let key = write_file(dir.path(), "api_key", "key\n", 0o600);
        let text = format!("{}[users]\n{main_users}", MAIN.replace("/nonexistent", &key.display().to_string()));
        let main = write_file(dir.path(), "pam_authy.toml", &text, 0o644);
        std::fs::create_dir(dir.path().join(USERS_DIR)).expect("mkdir users.d");
        set_mode(&dir.path().join(USERS_DIR), 0o755);
        (dir, main)
    }

    fn drop_in(dir: &tempfile::TempDir, name: &str, text: &str, mode: u32) -> PathBuf {
        write_file(&dir.path().join(USERS_DIR), name, text, mode)
    }

    fn problem(main: &Path) -> String {
        Config::load(main).expect_err("must be refused").to_string()
    }

    #[test]
    fn drop_in_users_join_the_main_files_users_in_lexical_order() {
        let (dir, main) = config_dir("alice = 1\n");
        drop_in(
            &dir,
            "20-ops.toml",
            "[users]\ncarol = { authy_id = 3, offline_secret = \"JBSWY3DPEHPK3PXP\" }\n",
            0o600,
        );
        drop_in(&dir, "10-dev.toml", "[users]\nbob = 2\n", 0o644);
        drop_in(&dir, "empty.toml", "", 0o644);
        drop_in(&dir, "notes.txt", "this is not TOML", 0o644);
        drop_in(&dir, ".ansible_tmpX30-tmp.toml", "not = [toml", 0o644);
        drop_in(&dir, "team.toml.dpkg-old", "[users]\nalice = 9\n", 0o644);
        let config = Config::load(&main).expect("config");
        let ids: Vec<_> = config.users.iter().map(|(name, u)| (name.as_str(), u.authy_id.map(|id| id.get()))).collect();
        assert_eq!(ids, [("alice", Some(1)), ("bob", Some(2)), ("carol", Some(3))]);
        let users_d = dir.path().join(USERS_DIR);
        assert_eq!(config.drop_ins, ["10-dev.toml", "20-ops.toml", "empty.toml"].map(|n| users_d.join(n)));
    }

    #[test]
    fn no_users_dir_means_no_drop_ins() {
        let (dir, main) = config_dir("alice = 1\n");
        std::fs::remove_dir(dir.path().join(USERS_DIR)).expect("rmdir");
        let config = Config::load(&main).expect("config");
        assert_eq!(config.users.len(), 1);
        assert!(config.drop_ins.is_empty());
    }

    #[test]
    fn a_user_defined_twice_is_an_error_naming_both_files() {
        let (dir, main) = config_dir("alice = 1\n");
        let second = drop_in(&dir, "10-dev.toml", "[users]\nalice = 2\n", 0o644);
        let shown = problem(&main);
        let error = Config::load(&main).expect_err("refused");
        let line = crate::flow::Decision::config_error(&error).log_line(&crate::flow::Login {
            user: "alice".into(),
            service: "sshd".into(),
            ..Default::default()
        });
        assert!(line.contains(&format!("{}: [users] alice", second.display())), "{line}");
        assert!(line.contains(&format!("already defined in {}", main.display())) && !line.contains('\n'), "{line}");
        assert!(
            shown.contains(&main.display().to_string()) && shown.contains(&second.display().to_string()),
            "{shown}"
        );
        assert!(shown.contains("[users] alice is already defined in"), "{shown}");

        std::fs::remove_file(&second).expect("rm");
        drop_in(&dir, "10-dev.toml", "[users]\nbob = 2\n", 0o644);
        let third = drop_in(&dir, "20-ops.toml", "[users]\nbob = 3\n", 0o644);
        let shown = problem(&main);
        let first = dir.path().join(USERS_DIR).join("10-dev.toml");
        assert!(
            shown.starts_with(&format!("{}: [users] bob is already defined in {}", third.display(), first.display())),
            "{shown}"
        );
    }

    #[test]
    fn a_drop_in_holds_only_users_with_the_main_files_rules() {
        let cases = [
            ("[api]\napi_key = \"k\"\n", "line 1: a users.d file holds only a [users] table"),
            ("[users]\nalice = 0\n", "[users] alice: Authy ID must be a positive integer"),
            (
                "[users]\nalice = { verify_identity = \"2f0c9a3e5b7d4e61\", phone = \"+15551234567\" }\n",
                "missing authy_id",
            ),
            ("[users]\nalice = 1\nalice = 2\n", "line 3: duplicate key"),
            ("[users\n", "line 1"),
            ("[users]\nbob = { authy_id = 1, offline_secret = \"JBSWY3DPEHPK3PXP\" }\n", "lets group or other read"),
        ];
        for (text, expected) in cases {
            let (dir, main) = config_dir("");
            let file = drop_in(&dir, "team.toml", text, 0o644);
            let shown = problem(&main);
            assert!(shown.starts_with(&format!("{}: ", file.display())), "{text:?}: {shown}");
            assert!(shown.contains(expected), "{text:?}: {shown:?} lacks {expected:?}");
            assert!(!shown.contains("JBSWY3DPEHPK3PXP"), "{shown}");
        }
    }

    #[test]
    fn an_unsafe_drop_in_or_directory_is_refused() {
        type Breaker = fn(&tempfile::TempDir) -> &'static str;
        let cases: [Breaker; 6] = [
            |dir| {
                drop_in(dir, "team.toml", "[users]\nbob = 2\n", 0o664);
                "is writable by group or other"
            },
            |dir| {
                let real = write_file(dir.path(), "real.toml", "[users]\nbob = 2\n", 0o644);
                symlink(real, dir.path().join(USERS_DIR).join("team.toml")).expect("symlink");
                "is a symbolic link"
            },
            |dir| {
                std::fs::create_dir(dir.path().join(USERS_DIR).join("team.toml")).expect("mkdir");
                "is not a regular file"
            },
            |dir| {
                set_mode(&dir.path().join(USERS_DIR), 0o777);
                "is writable by group or other"
            },
            |dir| {
                let real = dir.path().join("real.d");
                std::fs::remove_dir(dir.path().join(USERS_DIR)).expect("rmdir");
                std::fs::create_dir(&real).expect("mkdir");
                symlink(real, dir.path().join(USERS_DIR)).expect("symlink");
                "is a symbolic link"
            },
            |dir| {
                std::fs::remove_dir(dir.path().join(USERS_DIR)).expect("rmdir");
                write_file(dir.path(), USERS_DIR, "", 0o644);
                "is not a directory"
            },
        ];
        for breaker in cases {
            let (dir, main) = config_dir("alice = 1\n");
            let expected = breaker(&dir);
            let shown = problem(&main);
            assert!(shown.contains(expected), "{shown:?} lacks {expected:?}");
        }
    }

    #[test]
    fn the_number_of_drop_ins_is_bounded() {
        let (dir, main) = config_dir("");
        for n in 0..=MAX_DROP_INS {
            drop_in(&dir, &format!("{n:04}.toml"), "", 0o644);
        }
        assert!(problem(&main).contains("more than 256"));
    }
}
