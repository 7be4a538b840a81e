//! The image's `User` (`user`, `uid`, `user:group`, `uid:gid`, ...) turned into ids with the
//! rootfs's own `/etc/passwd` and `/etc/group`, as runc and umoci read them: a name must be
//! there, a number need not be; a user's primary group comes from its passwd line; a user
//! given by name without a group gets, as additional groups, those whose lines list it
//! (image-spec `conversion.md`); no `User` is root, with root's groups (umoci, Docker).

/// The ids a container process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecUser {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) additional_gids: Vec<u32>,
    /// The home directory, when the user has a passwd line.
    pub(crate) home: Option<String>,
}

/// `name:x:uid:gid:gecos:home:shell` lines: name, uid, gid, home.
fn passwd(text: &[u8]) -> impl Iterator<Item = (&[u8], u32, u32, &[u8])> {
    lines(text).filter_map(|f| {
        let uid = parse_id(f.get(2)?)?;
        let gid = parse_id(f.get(3)?)?;
        Some((f[0], uid, gid, f.get(5).copied().unwrap_or_default()))
    })
}

/// `name:x:gid:member,member` lines.
fn groups(text: &[u8]) -> impl Iterator<Item = (&[u8], u32, Vec<&[u8]>)> {
    lines(text).filter_map(|f| {
        let gid = parse_id(f.get(2)?)?;
        let members = f.get(3).map(|m| m.split(|b| *b == b',').filter(|m| !m.is_empty()).collect());
        Some((f[0], gid, members.unwrap_or_default()))
    })
}

fn lines(text: &[u8]) -> impl Iterator<Item = Vec<&[u8]>> {
    text.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .map(|l| l.split(|b| *b == b':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
}

fn parse_id(s: &[u8]) -> Option<u32> {
    std::str::from_utf8(s).ok()?.trim().parse().ok()
}

/// Resolve `spec` (the config's `User`; empty is root) against the rootfs's files.
pub(crate) fn resolve(
    spec: &str,
    passwd_file: Option<&[u8]>,
    group_file: Option<&[u8]>,
) -> Result<ExecUser, String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let pw = passwd_file.unwrap_or_default();
    let gr = group_file.unwrap_or_default();
    type Found<'a> = (u32, u32, Option<&'a [u8]>, Option<&'a [u8]>);
    let (uid, mut gid, name, home): Found<'_> = if user.is_empty() {
        match passwd(pw).find(|(_, u, _, _)| *u == 0) {
            Some((n, u, g, h)) => (u, g, Some(n), Some(h)),
            None => (0, 0, None, None),
        }
    } else if let Ok(uid) = user.parse::<u32>() {
        match passwd(pw).find(|(_, u, _, _)| *u == uid) {
            Some((n, u, g, h)) => (u, g, Some(n), Some(h)),
            None => (uid, 0, None, None),
        }
    } else {
        match passwd(pw).find(|(n, _, _, _)| *n == user.as_bytes()) {
            Some((n, u, g, h)) => (u, g, Some(n), Some(h)),
            None if passwd_file.is_none() => {
                return Err("the image has no /etc/passwd to find the name in".into());
            }
            None => return Err("no such user in the image's /etc/passwd".into()),
        }
    };
    if let Some(g) = group.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => match groups(gr).find(|(n, _, _)| *n == g.as_bytes()) {
                Some((_, id, _)) => id,
                None if group_file.is_none() => {
                    return Err("the image has no /etc/group to find the group in".into());
                }
                None => return Err(format!("no group `{g}` in the image's /etc/group")),
            },
        };
    }
    // The image spec: additional groups for a user given by name, without a group; with no
    // `User` at all (implementation-defined), root's, as umoci and Docker give them.
    let mut additional_gids = Vec::new();
    let named = user.parse::<u32>().is_err();
    if let Some(name) = name.filter(|_| named && group.is_none()) {
        for (_, id, members) in groups(gr) {
            if members.contains(&name) && !additional_gids.contains(&id) {
                additional_gids.push(id);
            }
        }
    }
    let home = home.filter(|h| !h.is_empty()).map(|h| String::from_utf8_lossy(h).into_owned());
    Ok(ExecUser { uid, gid, additional_gids, home })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n";
    const GROUP: &[u8] = b"root:x:0:\nwheel:x:10:app,root\nappg:x:1001:\nextra:x:2000:app\n";

    fn r(spec: &str) -> Result<ExecUser, String> {
        resolve(spec, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn users() {
        let root = |g: Vec<u32>| ExecUser {
            uid: 0,
            gid: 0,
            additional_gids: g,
            home: Some("/root".into()),
        };
        assert_eq!(r("").unwrap(), root(vec![10]));
        assert_eq!(r("root").unwrap(), root(vec![10]));
        // A group listing the user counts even when it is the primary one (as runc and umoci).
        let own = resolve("", Some(PASSWD), Some(b"root:x:0:root\nwheel:x:10:root\n")).unwrap();
        assert_eq!(own.additional_gids, vec![0, 10]);
        assert_eq!(r("0").unwrap(), root(vec![]));
        assert_eq!(r("app:appg").unwrap().additional_gids, Vec::<u32>::new());
        assert_eq!(
            r("app").unwrap(),
            ExecUser {
                uid: 1000,
                gid: 1001,
                additional_gids: vec![10, 2000],
                home: Some("/app".into())
            }
        );
        assert_eq!(r("1000:wheel").unwrap().gid, 10);
        assert_eq!(
            r("4242").unwrap(),
            ExecUser { uid: 4242, gid: 0, additional_gids: vec![], home: None }
        );
        assert_eq!(r("4242:4343").unwrap().gid, 4343);
        assert!(r("nobody").is_err());
        assert!(r("app:nogroup").is_err());
        assert_eq!(
            resolve("7:8", None, None).unwrap(),
            ExecUser { uid: 7, gid: 8, additional_gids: vec![], home: None }
        );
        assert!(resolve("app", None, None).is_err());
    }
}
