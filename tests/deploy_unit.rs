//! `deploy/linkmesh.service` holds what `docs/operations.md` promises of it (restart on failure but
//! not on exit codes 1 and 3, the sandbox, where settings and data live), names only settings
//! linkmesh reads, and passes `systemd-analyze verify` where systemd is installed.

use std::collections::BTreeMap;
use std::path::Path;

const UNIT: &str = include_str!("../deploy/linkmesh.service");

/// `section → key → values` (a key may repeat; an empty assignment is kept as "").
fn parse(unit: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut current = String::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            current = name.to_owned();
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("not a setting: {line}"));
        assert!(!current.is_empty(), "setting outside a section: {line}");
        sections
            .entry(current.clone())
            .or_default()
            .entry(key.trim().to_owned())
            .or_default()
            .push(value.trim().to_owned());
    }
    sections
}

#[test]
fn the_unit_restarts_on_failure_but_not_on_bad_config_or_damage_and_is_sandboxed() {
    let unit = parse(UNIT);
    let service = &unit["Service"];
    let one = |key: &str| -> &str {
        let values = service.get(key).unwrap_or_else(|| panic!("[Service] has no {key}"));
        assert_eq!(values.len(), 1, "{key} is set once: {values:?}");
        &values[0]
    };
    assert_eq!(one("Restart"), "on-failure", "exit code 4 (storage failed) brings the node back");
    assert!(one("RestartSec").ends_with('s'), "a delay long enough to free space");
    let prevented: Vec<&str> = one("RestartPreventExitStatus").split_whitespace().collect();
    assert_eq!(prevented, ["1", "3"], "bad configuration and a damaged data dir are not restarted");
    assert!(one("ExecStart").ends_with("/linkmesh serve"), "{}", one("ExecStart"));

    let environment = &service["Environment"];
    assert!(
        environment.contains(&"LINKMESH_CONFIG=/etc/linkmesh/linkmesh.toml".to_owned()),
        "{environment:?}"
    );
    assert!(environment.contains(&"LINKMESH_DATA_DIR=/var/lib/linkmesh".to_owned()), "{environment:?}");
    assert_eq!(one("EnvironmentFile"), "-/etc/linkmesh/linkmesh.env");
    assert_eq!(one("StateDirectory"), "linkmesh", "the data dir is /var/lib/linkmesh");
    assert_eq!(one("StateDirectoryMode"), "0700", "linkmesh refuses a data dir others may write");

    for (key, value) in [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("LockPersonality", "yes"),
        ("SystemCallArchitectures", "native"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ] {
        assert_eq!(one(key), value, "{key}");
    }
    assert!(
        service["SystemCallFilter"].contains(&"@system-service".to_owned()),
        "{:?}",
        service["SystemCallFilter"]
    );
    assert_eq!(unit["Install"]["WantedBy"], ["multi-user.target"]);
}

/// Every `LINKMESH_*` variable the unit names (its comments included) is one linkmesh reads.
#[test]
fn the_unit_names_only_variables_linkmesh_reads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources: String = ["src/cli.rs", "src/server.rs", "src/main.rs"]
        .iter()
        .map(|file| std::fs::read_to_string(root.join(file)).expect("read source"))
        .collect();
    let mut named = 0;
    for (start, _) in UNIT.match_indices("LINKMESH_") {
        let name: String =
            UNIT[start..].chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
        if name.ends_with('_') {
            continue; // `LINKMESH_*`: the family, not a name
        }
        assert!(sources.contains(&format!("\"{name}\"")), "{name} is not read by linkmesh");
        named += 1;
    }
    assert!(named >= 5, "the unit names its settings");
}

/// `systemd-analyze verify` on the unit, with `ExecStart` pointing at the binary just built (verify
/// checks that it exists). Warnings about the unit fail the test as errors do.
#[test]
fn systemd_analyze_verifies_the_unit_where_systemd_is_installed() {
    let Ok(found) = std::process::Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze is not installed here: only the settings were checked");
        return;
    };
    assert!(found.status.success());
    let dir = tempfile::tempdir().expect("temp dir");
    let unit = UNIT.replace("/usr/local/bin/linkmesh", env!("CARGO_BIN_EXE_linkmesh"));
    let path = dir.path().join("linkmesh.service");
    std::fs::write(&path, unit).expect("write unit");
    let verified = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&verified.stderr);
    let about_unit: Vec<&str> = stderr.lines().filter(|line| line.contains("linkmesh.service")).collect();
    assert!(verified.status.success() && about_unit.is_empty(), "systemd-analyze verify:\n{stderr}");
}
