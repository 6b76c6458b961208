//! Permissions: the `Permission` constants tools declare, and the one policy that decides whether a
//! token's permissions satisfy a tool's. A leaf: `auth` and `tool` both use it, it uses neither.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// A permission a tool can require: an OAuth scope token (RFC 6749 §3.3), what it allows, and the
/// permissions it implies. Built in a `const`, where a malformed scope fails the build at that line:
///
/// ```
/// use toolgate::Permission;
///
/// pub const GET_USER_INFO: Permission =
///     Permission::new("tool:get_user_info", "Read the caller's Auth0 profile");
/// pub const READ_AUDIT: Permission = Permission::new("tool:read_audit_log", "Read the audit log");
/// pub const ADMIN: Permission =
///     Permission::new("tool:admin", "Every tool").implies(&[GET_USER_INFO, READ_AUDIT]);
///
/// assert_eq!(ADMIN.scope(), "tool:admin");
/// assert_eq!(ADMIN.implied(), [GET_USER_INFO, READ_AUDIT]);
/// ```
///
/// A token holding a permission holds everything it implies, transitively; implications run
/// downward only, and a permission whose name starts with another's implies nothing by that. A
/// cycle cannot be written: rustc refuses constants that depend on themselves.
#[derive(Clone, Copy)]
pub struct Permission {
    scope: &'static str,
    description: &'static str,
    implies: &'static [Permission],
}

impl Permission {
    /// A permission with its scope token and a description (shown in Auth0's API settings, on the
    /// consent page and by `--print-permissions`). Panics, so fails the build when called in a
    /// `const`, unless `scope` is 1 or more printable ASCII characters other than space, `"` and `\`.
    #[track_caller]
    pub const fn new(scope: &'static str, description: &'static str) -> Self {
        check_scope(scope);
        Self {
            scope,
            description,
            implies: &[],
        }
    }

    /// The same permission, implying each of `implied` (and, through them, what they imply).
    #[track_caller]
    pub const fn implies(self, implied: &'static [Permission]) -> Self {
        let mut i = 0;
        while i < implied.len() {
            if str_eq(implied[i].scope, self.scope) {
                panic!("a permission cannot imply itself: remove it from its own `implies` list");
            }
            i += 1;
        }
        Self {
            implies: implied,
            ..self
        }
    }

    /// A permission known only by its scope, as `permissions = ["..."]` writes it. The macro has
    /// checked the scope; this checks it again, so a hand-built one is no weaker.
    #[doc(hidden)]
    #[track_caller]
    pub const fn literal(scope: &'static str) -> Self {
        Self::new(scope, "")
    }

    /// The scope token, as it appears in a token's `permissions` claim.
    pub const fn scope(&self) -> &'static str {
        self.scope
    }

    /// What the permission allows; `None` for one written as a string literal.
    pub const fn description(&self) -> Option<&'static str> {
        if self.description.is_empty() {
            None
        } else {
            Some(self.description)
        }
    }

    /// The permissions it implies directly.
    pub const fn implied(&self) -> &'static [Permission] {
        self.implies
    }
}

/// Permissions are the same when their scopes are.
impl PartialEq for Permission {
    fn eq(&self, other: &Self) -> bool {
        self.scope == other.scope
    }
}

impl Eq for Permission {}

impl std::hash::Hash for Permission {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.scope.hash(state);
    }
}

impl AsRef<str> for Permission {
    fn as_ref(&self) -> &str {
        self.scope
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scope)
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Permission");
        debug.field("scope", &self.scope);
        if let Some(description) = self.description() {
            debug.field("description", &description);
        }
        if !self.implies.is_empty() {
            let implied: Vec<&str> = self.implies.iter().map(|p| p.scope).collect();
            debug.field("implies", &implied);
        }
        debug.finish()
    }
}

impl serde::Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.scope)
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`. Each rule has its own message,
/// because const evaluation cannot format the offending character into one.
#[track_caller]
const fn check_scope(scope: &str) {
    let bytes = scope.as_bytes();
    if bytes.is_empty() {
        panic!("a permission's scope cannot be empty: write its name, like `tool:read`");
    }
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' => panic!(
                "a permission's scope cannot contain a space: a space separates OAuth scopes \
                 (RFC 6749 §3.3), so declare each permission separately"
            ),
            b'"' => panic!(
                "a permission's scope cannot contain `\"`: OAuth scope tokens (RFC 6749 §3.3) use \
                 printable ASCII other than space, `\"` and `\\`"
            ),
            b'\\' => panic!(
                "a permission's scope cannot contain `\\`: OAuth scope tokens (RFC 6749 §3.3) use \
                 printable ASCII other than space, `\"` and `\\`"
            ),
            0x80.. => panic!(
                "a permission's scope cannot contain non-ASCII characters: OAuth scope tokens \
                 (RFC 6749 §3.3) use printable ASCII other than space, `\"` and `\\`"
            ),
            0x21..=0x7E => {}
            _ => panic!(
                "a permission's scope cannot contain control characters: OAuth scope tokens \
                 (RFC 6749 §3.3) use printable ASCII other than space, `\"` and `\\`"
            ),
        }
        i += 1;
    }
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The assertion `#[mcp_tool]` emits, spanned at its `permissions` list: a scope listed twice,
/// through constants or literals alike, fails the build there.
#[doc(hidden)]
#[track_caller]
pub const fn assert_distinct(permissions: &[Permission]) {
    let mut i = 0;
    while i < permissions.len() {
        let mut j = i + 1;
        while j < permissions.len() {
            if str_eq(permissions[i].scope, permissions[j].scope) {
                panic!(
                    "a permission is listed twice in `permissions` (a constant and a string \
                     literal with the same scope are the same permission): remove the repeat"
                );
            }
            j += 1;
        }
        i += 1;
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Permission {}
}

/// Implemented by `Permission` alone: the bound `#[mcp_tool]` checks on each path in `permissions`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `toolgate::Permission`",
    label = "expected a `toolgate::Permission` constant",
    note = "declare it as `const NAME: toolgate::Permission = toolgate::Permission::new(\"scope\", \"what it allows\");`, or write the scope as a string literal"
)]
pub trait IsPermission: sealed::Sealed + Copy {}

impl IsPermission for Permission {}

/// One element of `permissions = [...]` written as a path. Const evaluation cannot call trait
/// methods, and a bound check alone would leave rustc to also report a type mismatch at the same
/// element; this takes any `IsPermission`, so the bound's message is the only error.
#[doc(hidden)]
pub const fn permission<P: IsPermission>(value: &P) -> Permission {
    // SAFETY: `IsPermission` is sealed and implemented for `Permission` only, so `P` is `Permission`.
    unsafe { *(value as *const P).cast::<Permission>() }
}

/// Why a caller may not do something: the permissions it lacks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("permission denied: missing {}", .missing.join(", "))]
pub struct MissingPermissions {
    missing: Vec<String>,
}

impl MissingPermissions {
    /// The required permissions the caller holds neither directly nor through an implication.
    pub fn missing(&self) -> &[String] {
        &self.missing
    }
}

/// The one rule behind every permission decision (the 403 pre-check, the generated guard,
/// `tools/list`, `require_permissions`, `AccessToken::has_permissions`): a caller satisfies a
/// requirement when it holds each required permission, or a permission that implies it.
///
/// It knows the implications of the catalog it was built from: for a server, every permission a
/// tool or an `implies` uses. A scope it does not know implies nothing.
#[derive(Debug, Default)]
pub(crate) struct PermissionPolicy {
    /// For each scope, the other scopes whose (transitive) implications include it.
    granted_by: HashMap<&'static str, Box<[&'static str]>>,
}

impl PermissionPolicy {
    /// Only exact matches: the policy of a token no server has seen.
    pub(crate) fn exact() -> Self {
        Self::default()
    }

    /// The policy of a catalog.
    pub(crate) fn new(catalog: &Catalog) -> Self {
        let mut granted_by: BTreeMap<&'static str, BTreeSet<&'static str>> = BTreeMap::new();
        for (&scope, entry) in &catalog.entries {
            for implied in catalog.implied_by(entry) {
                if implied != scope {
                    granted_by.entry(implied).or_default().insert(scope);
                }
            }
        }
        Self {
            granted_by: granted_by
                .into_iter()
                .map(|(scope, by)| (scope, by.into_iter().collect()))
                .collect(),
        }
    }

    /// Whether holding `held` grants `required`.
    fn grants(&self, held: &[String], required: &str) -> bool {
        held.iter().any(|h| h == required)
            || self
                .granted_by
                .get(required)
                .is_some_and(|by| by.iter().any(|b| held.iter().any(|h| h == b)))
    }

    /// Checks that `held` satisfies every one of `required`; the error lists those it does not.
    pub(crate) fn check<R: AsRef<str>>(
        &self,
        held: &[String],
        required: &[R],
    ) -> Result<(), MissingPermissions> {
        if required.iter().all(|r| self.grants(held, r.as_ref())) {
            return Ok(());
        }
        Err(MissingPermissions {
            missing: required
                .iter()
                .map(AsRef::as_ref)
                .filter(|r| !self.grants(held, r))
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// Permissions by scope, with everything their `implies` reach. One scope declared twice must be
/// declared alike; a literal (no description, no implications) names whichever constant shares its
/// scope.
#[derive(Debug)]
pub(crate) struct Catalog {
    entries: BTreeMap<&'static str, Permission>,
}

/// Two declarations of one scope that disagree.
#[derive(Debug)]
pub(crate) struct Conflict {
    pub(crate) scope: &'static str,
}

impl Catalog {
    /// A catalog that refuses disagreeing declarations.
    pub(crate) fn checked<'a>(
        permissions: impl IntoIterator<Item = &'a Permission>,
    ) -> Result<Self, Conflict> {
        let mut catalog = Self {
            entries: BTreeMap::new(),
        };
        for permission in permissions {
            catalog.add(permission)?;
        }
        Ok(catalog)
    }

    /// Adds a permission and, recursively, what it implies.
    fn add(&mut self, permission: &Permission) -> Result<(), Conflict> {
        let mut pending = vec![*permission];
        let mut conflict = None;
        while let Some(p) = pending.pop() {
            match self.entries.get_mut(p.scope) {
                None => {
                    self.entries.insert(p.scope, p);
                    pending.extend_from_slice(p.implies);
                }
                Some(known) => {
                    let is_literal =
                        |p: &Permission| p.description.is_empty() && p.implies.is_empty();
                    if is_literal(&p) || same_declaration(known, &p) {
                        continue;
                    }
                    if is_literal(known) {
                        *known = p;
                        pending.extend_from_slice(p.implies);
                    } else {
                        conflict.get_or_insert(Conflict { scope: p.scope });
                    }
                }
            }
        }
        conflict.map_or(Ok(()), Err)
    }

    /// Every scope `permission` implies, transitively (cycles between same-named constants end).
    fn implied_by(&self, permission: &Permission) -> BTreeSet<&'static str> {
        let mut seen = BTreeSet::new();
        let mut pending: Vec<&'static str> = permission.implies.iter().map(|p| p.scope).collect();
        while let Some(scope) = pending.pop() {
            if seen.insert(scope)
                && let Some(entry) = self.entries.get(scope)
            {
                pending.extend(entry.implies.iter().map(|p| p.scope));
            }
        }
        seen
    }

    /// Every permission, sorted by scope.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.entries.values()
    }

    pub(crate) fn policy(&self) -> PermissionPolicy {
        PermissionPolicy::new(self)
    }
}

fn same_declaration(a: &Permission, b: &Permission) -> bool {
    a.description == b.description
        && a.implies.len() == b.implies.len()
        && a.implies
            .iter()
            .zip(b.implies)
            .all(|(x, y)| x.scope == y.scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: Permission = Permission::new("tool:read", "Read");
    const WRITE: Permission = Permission::new("tool:write", "Write").implies(&[READ]);
    const ADMIN: Permission = Permission::new("tool:admin", "Everything").implies(&[WRITE]);
    const AUDIT: Permission = Permission::new("tool:audit", "Audit");

    fn held(scopes: &[&str]) -> Vec<String> {
        scopes.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn implications_are_transitive_and_run_downward_only() {
        let policy = Catalog::checked([&ADMIN, &AUDIT]).unwrap().policy();
        assert!(policy.check(&held(&["tool:admin"]), &[READ, WRITE]).is_ok());
        assert!(policy.check(&held(&["tool:write"]), &["tool:read"]).is_ok());
        let refused = policy
            .check(&held(&["tool:read"]), &[ADMIN, WRITE, READ])
            .unwrap_err();
        assert_eq!(refused.missing(), ["tool:admin", "tool:write"]);
        assert!(policy.check(&held(&["tool:admin"]), &[AUDIT]).is_err());
    }

    #[test]
    fn a_prefix_implies_nothing() {
        let policy = Catalog::checked([&ADMIN]).unwrap().policy();
        assert!(policy.check(&held(&["tool:"]), &["tool:read"]).is_err());
        assert!(policy.check(&held(&["tool:adm"]), &["tool:read"]).is_err());
        assert!(
            policy
                .check(&held(&["tool:read"]), &["tool:read:all"])
                .is_err()
        );
    }

    #[test]
    fn unknown_scopes_match_exactly() {
        let policy = PermissionPolicy::exact();
        assert!(
            policy
                .check(&held(&["tool:admin"]), &["tool:admin"])
                .is_ok()
        );
        assert!(policy.check(&held(&["tool:admin"]), &[READ]).is_err());
        assert!(policy.check::<&str>(&[], &[]).is_ok());
    }

    #[test]
    fn a_cycle_through_same_named_constants_is_refused() {
        const A2: Permission = Permission::new("a", "A");
        const B: Permission = Permission::new("b", "B").implies(&[A2]);
        const A: Permission = Permission::new("a", "A").implies(&[B]);
        // The two declarations of `a` disagree: a server refuses this at start.
        assert_eq!(Catalog::checked([&A]).unwrap_err().scope, "a");
    }

    #[test]
    fn a_literal_names_the_constant_of_its_scope() {
        let literal = Permission::literal("tool:admin");
        let catalog = Catalog::checked([&literal, &ADMIN]).unwrap();
        let admin = catalog.iter().find(|p| p.scope() == "tool:admin").unwrap();
        assert_eq!(admin.description(), Some("Everything"));
        assert_eq!(
            catalog.iter().map(|p| p.scope()).collect::<Vec<_>>(),
            ["tool:admin", "tool:read", "tool:write"]
        );
        let conflicting = Permission::new("tool:admin", "Something else");
        assert_eq!(
            Catalog::checked([&ADMIN, &conflicting]).unwrap_err().scope,
            "tool:admin"
        );
    }

    #[test]
    fn a_path_converts_to_itself() {
        const P: Permission = permission(&ADMIN);
        assert_eq!(P.scope(), "tool:admin");
        assert_eq!(P.implied(), [WRITE]);
    }
}
