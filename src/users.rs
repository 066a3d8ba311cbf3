//! From the PAM user to what the module must do for them.
//!
//! The PAM user name is resolved through NSS to its canonical account name first, so that
//! `ALICE` or `alice ` on a case-insensitive directory cannot slip past the mapping as an
//! "unmapped" user. Then the `groups` rule and the `[users]` mapping decide. Only a user
//! positively absent from a readable mapping is "unmapped"; any lookup failure is an error,
//! never an exemption.

use crate::config::{Config, UnmappedPolicy, UserEntry};
use std::fmt;

/// An account as NSS knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub gid: u32,
}

/// Why a lookup could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupError(pub String);

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The system's account database (NSS), behind a trait for tests.
pub trait AccountDb {
    fn account(&self, name: &str) -> Result<Option<Account>, LookupError>;
    fn group_id(&self, group: &str) -> Result<Option<u32>, LookupError>;
    fn group_ids(&self, account: &Account) -> Result<Vec<u32>, LookupError>;
}

/// NSS through libc (getpwnam_r, getgrnam_r, getgrouplist).
pub struct SystemAccounts;

impl AccountDb for SystemAccounts {
    fn account(&self, name: &str) -> Result<Option<Account>, LookupError> {
        nix::unistd::User::from_name(name)
            .map(|user| user.map(|u| Account { name: u.name, gid: u.gid.as_raw() }))
            .map_err(|e| LookupError(format!("getpwnam: {}", e.desc())))
    }

    fn group_id(&self, group: &str) -> Result<Option<u32>, LookupError> {
        nix::unistd::Group::from_name(group)
            .map(|g| g.map(|g| g.gid.as_raw()))
            .map_err(|e| LookupError(format!("getgrnam: {}", e.desc())))
    }

    fn group_ids(&self, account: &Account) -> Result<Vec<u32>, LookupError> {
        let name = std::ffi::CString::new(account.name.as_str())
            .map_err(|_| LookupError("user name holds a NUL byte".into()))?;
        nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(account.gid))
            .map(|gids| gids.into_iter().map(|g| g.as_raw()).collect())
            .map_err(|e| LookupError(format!("getgrouplist: {}", e.desc())))
    }
}

/// What the configuration says about this login.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject<'c> {
    /// Needs the second factor with this entry.
    Mapped { account: String, entry: &'c UserEntry },
    /// Not in any of `[auth] groups`: PAM_IGNORE.
    OutsideGroups { account: String },
    /// Not in `[users]`, and policy `ignore`: PAM_IGNORE.
    UnmappedIgnored { account: String },
    /// Not in `[users]`, and policy `deny`: PAM_USER_UNKNOWN.
    UnmappedDenied { account: String },
    /// No such account in NSS: PAM_USER_UNKNOWN.
    NoSuchAccount,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectError {
    Lookup(LookupError),
    /// A group named in `[auth] groups` does not exist: a configuration error.
    MissingGroup(String),
}

impl fmt::Display for SubjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectError::Lookup(e) => write!(f, "account lookup failed: {e}"),
            SubjectError::MissingGroup(g) => {
                write!(f, "[auth] groups names {g:?}, which does not exist")
            }
        }
    }
}

/// The gid of every group in `[auth] groups`. A group that does not exist is an error, never
/// an exemption: every login through the module then fails, and `pam-authy check` says so
/// by calling this same function.
pub fn required_group_ids(config: &Config, db: &dyn AccountDb) -> Result<Vec<u32>, SubjectError> {
    config
        .auth
        .groups
        .iter()
        .map(|group| {
            db.group_id(group).map_err(SubjectError::Lookup)?.ok_or_else(|| SubjectError::MissingGroup(group.clone()))
        })
        .collect()
}

pub fn resolve<'c>(config: &'c Config, db: &dyn AccountDb, pam_user: &str) -> Result<Subject<'c>, SubjectError> {
    if !crate::config::valid_account_name(pam_user) {
        return Ok(Subject::NoSuchAccount);
    }
    let Some(account) = db.account(pam_user).map_err(SubjectError::Lookup)? else {
        return Ok(Subject::NoSuchAccount);
    };
    let name = account.name.clone();
    if !config.auth.groups.is_empty() {
        let member_of = db.group_ids(&account).map_err(SubjectError::Lookup)?;
        let required = required_group_ids(config, db)?;
        if !required.iter().any(|gid| member_of.contains(gid)) {
            return Ok(Subject::OutsideGroups { account: name });
        }
    }
    Ok(match config.user(&name) {
        Some(entry) => Subject::Mapped { account: name, entry },
        None => match config.auth.unmapped_users {
            UnmappedPolicy::Ignore => Subject::UnmappedIgnored { account: name },
            UnmappedPolicy::Deny => Subject::UnmappedDenied { account: name },
        },
    })
}

/// An in-memory account database: name -> (canonical name, gid, groups).
#[cfg(any(test, feature = "test-support"))]
#[derive(Default)]
pub struct FakeAccounts {
    pub accounts: std::collections::BTreeMap<String, (String, u32, Vec<u32>)>,
    pub groups: std::collections::BTreeMap<String, u32>,
    pub broken: bool,
}

#[cfg(any(test, feature = "test-support"))]
impl FakeAccounts {
    /// One account in its own primary group and no named groups.
    pub fn one(name: &str, gid: u32) -> FakeAccounts {
        let mut db = FakeAccounts::default();
        db.accounts.insert(name.into(), (name.into(), gid, vec![gid]));
        db
    }
}

#[cfg(any(test, feature = "test-support"))]
impl AccountDb for FakeAccounts {
    fn account(&self, name: &str) -> Result<Option<Account>, LookupError> {
        if self.broken {
            return Err(LookupError("nss down".into()));
        }
        Ok(self.accounts.get(name).map(|(n, gid, _)| Account { name: n.clone(), gid: *gid }))
    }
    fn group_id(&self, group: &str) -> Result<Option<u32>, LookupError> {
        Ok(self.groups.get(group).copied())
    }
    fn group_ids(&self, account: &Account) -> Result<Vec<u32>, LookupError> {
        Ok(self.accounts.get(&account.name).map(|a| a.2.clone()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(extra_auth: &str) -> Config {
        let text = format!(
            "[api]\nurl = \"https://127.0.0.1:1\"\napi_key = \"k\"\n[auth]\n{extra_auth}\n[users]\nalice = 42\n"
        );
        Config::parse(Path::new("/test.toml"), &text).expect("config")
    }

    fn db() -> FakeAccounts {
        let mut db = FakeAccounts::default();
        db.accounts.insert("alice".into(), ("alice".into(), 100, vec![100, 27]));
        db.accounts.insert("ALICE".into(), ("alice".into(), 100, vec![100, 27]));
        db.accounts.insert("bob".into(), ("bob".into(), 101, vec![101]));
        db.groups.insert("sudo".into(), 27);
        db
    }

    #[test]
    fn a_mapped_user_needs_the_second_factor() {
        let config = config("");
        assert!(matches!(resolve(&config, &db(), "alice"), Ok(Subject::Mapped { .. })));
    }

    #[test]
    fn a_differently_spelled_name_maps_through_its_canonical_account() {
        let config = config("unmapped_users = \"ignore\"");
        match resolve(&config, &db(), "ALICE") {
            Ok(Subject::Mapped { account, entry }) => {
                assert_eq!(account, "alice");
                assert_eq!(entry.authy_id.map(crate::config::AuthyId::get), Some(42));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unmapped_users_follow_the_policy() {
        assert!(matches!(resolve(&config(""), &db(), "bob"), Ok(Subject::UnmappedDenied { .. })));
        let ignore = config("unmapped_users = \"ignore\"");
        assert!(matches!(resolve(&ignore, &db(), "bob"), Ok(Subject::UnmappedIgnored { .. })));
    }

    #[test]
    fn unknown_accounts_and_odd_names_are_unknown_even_under_ignore() {
        let ignore = config("unmapped_users = \"ignore\"");
        for name in ["mallory", "alice ", "", "a:b", "a\nb"] {
            assert_eq!(resolve(&ignore, &db(), name), Ok(Subject::NoSuchAccount), "{name:?}");
        }
    }

    #[test]
    fn users_outside_the_groups_are_exempt_and_members_are_not() {
        let config = config("groups = [\"sudo\"]");
        assert!(matches!(resolve(&config, &db(), "bob"), Ok(Subject::OutsideGroups { .. })));
        assert!(matches!(resolve(&config, &db(), "alice"), Ok(Subject::Mapped { .. })));
    }

    #[test]
    fn lookup_failures_and_missing_groups_are_errors_not_exemptions() {
        let mut broken = db();
        broken.broken = true;
        assert!(matches!(resolve(&config(""), &broken, "alice"), Err(SubjectError::Lookup(_))));
        let missing = config("groups = [\"nosuchgroup\"]");
        assert_eq!(resolve(&missing, &db(), "bob"), Err(SubjectError::MissingGroup("nosuchgroup".into())));
    }
}
