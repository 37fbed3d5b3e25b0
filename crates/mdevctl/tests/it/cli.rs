//! The command line of the read-only commands: `lsmdev` by argv[0], `-V` strings, help,
//! usage errors (exit 2) and start-up without the required directories (spec §1-§2,
//! DIVERGENCES §1, §3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::common::*;

/// The mdevctl interface first (what scripts compare), then mdevkit's own release.
const VERSION: &str = concat!("1.4.0 (mdevkit ", env!("CARGO_PKG_VERSION"), ")");

fn assert_usage_error(t: &Transcript, needle: &str) {
    assert_eq!(t.code, 2, "exit code; stderr: {}", t.stderr);
    assert_eq!(t.stdout, "", "stdout");
    assert!(t.stderr.starts_with("error: "), "{}", t.stderr);
    assert!(t.stderr.contains(needle), "{needle:?} not in {}", t.stderr);
}

#[test]
fn lsmdev_by_name_lists_active_devices() {
    let root = standard_host();
    let t = run(&root, "lsmdev", &[]);
    t.assert_clean();
    assert_eq!(t.stdout, mdevctl(&root, &["list"]).stdout);
    assert!(!t.stdout.is_empty());
}

#[test]
fn lsmdev_takes_every_list_option() {
    let root = standard_host();
    for args in [
        &["-d"][..],
        &["-dv"],
        &["--dumpjson"],
        &["-d", "--dumpjson", "-u", U3],
        &["-p", "mtty"],
        &["--defined", "--verbose", "--parent", "matrix"],
    ] {
        let t = run(&root, "lsmdev", args);
        t.assert_clean();
        let want = mdevctl(&root, &[&["list"], args].concat());
        assert_eq!(t.stdout, want.stdout, "{args:?}");
    }
}

#[test]
fn lsmdev_suffix_in_a_path_or_name_selects_lsmdev() {
    let root = standard_host();
    let want = mdevctl(&root, &["list", "-d"]).stdout;
    for argv0 in ["/x/mylsmdev", "x-lsmdev", "sbin/lsmdev"] {
        let t = run(&root, argv0, &["-d"]);
        t.assert_clean();
        assert_eq!(t.stdout, want, "{argv0}");
    }
}

#[test]
fn lsmdev_exe_is_not_lsmdev() {
    let root = standard_host();
    // As mdevctl, `-d` alone is not a subcommand: usage error.
    let t = run(&root, "lsmdev.exe", &["-d"]);
    assert_usage_error(&t, "unexpected argument '-d'");
    let t = run(&root, "lsmdev.exe", &["list", "-d"]);
    t.assert_clean();
    assert_eq!(t.stdout, mdevctl(&root, &["list", "-d"]).stdout);
}

#[test]
fn lsmdev_usage_line_uses_argv0_basename() {
    let root = FakeRoot::new();
    let t = run(&root, "/x/mylsmdev", &["--bogus"]);
    assert_usage_error(&t, "Usage: mylsmdev [OPTIONS]");
}

#[test]
fn lsmdev_rejects_positional_arguments() {
    let root = FakeRoot::new();
    let t = run(&root, "lsmdev", &["list"]);
    assert_usage_error(&t, "unexpected argument 'list'");
}

#[test]
fn version_strings() {
    let root = FakeRoot::new();
    let cases: [(&str, &[&str], String); 6] = [
        ("mdevctl", &["-V"], format!("mdevctl {VERSION}\n")),
        ("mdevctl", &["--version"], format!("mdevctl {VERSION}\n")),
        (
            "mdevctl",
            &["list", "-V"],
            format!("mdevctl-list {VERSION}\n"),
        ),
        ("lsmdev", &["-V"], format!("lsmdev {VERSION}\n")),
        ("/x/mylsmdev", &["--version"], format!("lsmdev {VERSION}\n")),
        // The name is fixed, not argv[0].
        ("foo", &["-V"], format!("mdevctl {VERSION}\n")),
    ];
    for (argv0, args, want) in cases {
        let t = run(&root, argv0, args);
        t.assert_clean();
        assert_eq!(t.stdout, want, "{argv0} {args:?}");
    }
}

#[test]
fn types_has_no_version_option() {
    let root = FakeRoot::new();
    assert_usage_error(&mdevctl(&root, &["types", "-V"]), "'-V'");
}

#[test]
fn bare_mdevctl_prints_help_on_stderr_and_exits_2() {
    let root = FakeRoot::new();
    let t = mdevctl(&root, &[]);
    assert_eq!(t.code, 2);
    assert_eq!(t.stdout, "");
    assert!(
        t.stderr.contains("Usage: mdevctl <COMMAND>"),
        "{}",
        t.stderr
    );
    for sub in [
        "define", "undefine", "modify", "start", "stop", "list", "types",
    ] {
        assert!(t.stderr.contains(&format!("  {sub} ")), "{sub}");
    }
    assert!(
        !t.stderr.contains("start-parent-mdevs"),
        "hidden command shown"
    );
}

#[test]
fn help_and_version_work_without_required_directories() {
    let root = FakeRoot::bare();
    for (argv0, args) in [
        ("mdevctl", &["--help"][..]),
        ("mdevctl", &["-h"]),
        ("mdevctl", &["--version"]),
        ("mdevctl", &["help"]),
        ("mdevctl", &["help", "list"]),
        ("mdevctl", &["list", "--help"]),
        ("mdevctl", &["types", "--help"]),
        ("lsmdev", &["--help"]),
        ("lsmdev", &["--version"]),
    ] {
        let t = run(&root, argv0, args);
        t.assert_clean();
        assert!(!t.stdout.is_empty(), "{argv0} {args:?}");
    }
}

#[test]
fn help_subcommand_prints_subcommand_help_on_stdout() {
    let root = FakeRoot::new();
    let t = mdevctl(&root, &["help", "list"]);
    t.assert_clean();
    for opt in ["--defined", "--dumpjson", "--verbose", "--uuid", "--parent"] {
        assert!(t.stdout.contains(opt), "{opt}");
    }
    let t = mdevctl(&root, &["help", "types"]);
    t.assert_clean();
    assert!(t.stdout.contains("--dumpjson") && t.stdout.contains("--parent"));
}

#[test]
fn read_only_commands_treat_missing_directories_as_empty() {
    let root = FakeRoot::bare();
    for (args, want) in [
        (&["list"][..], ""),
        (&["list", "-d"], ""),
        (&["list", "--dumpjson"], "[]"),
        (&["list", "-d", "--dumpjson"], "[]"),
        (&["list", "-d", "-u", U1, "--dumpjson"], "[]"),
        (&["types"], ""),
        (&["types", "--dumpjson"], "[]"),
    ] {
        let t = mdevctl(&root, args);
        t.assert_clean();
        assert_eq!(t.stdout, want, "{args:?}");
    }
}

#[test]
fn list_defined_works_without_scripts_directories() {
    let root = FakeRoot::new();
    root.remove("usr");
    root.define("mtty", U1, "mtty-1", "auto");
    let t = mdevctl(&root, &["list", "-d"]);
    t.assert_clean();
    assert_eq!(t.stdout, format!("{U1} mtty mtty-1 auto\n"));
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let root = FakeRoot::new();
    assert_usage_error(&mdevctl(&root, &["lsit"]), "unrecognized subcommand 'lsit'");
    // There is no `version` subcommand (bash era only).
    assert_usage_error(
        &mdevctl(&root, &["version"]),
        "unrecognized subcommand 'version'",
    );
}

#[test]
fn duplicate_options_are_usage_errors() {
    let root = FakeRoot::new();
    for args in [
        &["list", "-d", "-d"][..],
        &["list", "-dd"],
        &["list", "--dumpjson", "--dumpjson"],
        &["list", "-v", "--verbose"],
        &["list", "-u", U1, "-u", U2],
        &["list", "-p", "a", "--parent", "b"],
        &["types", "-p", "a", "-p", "a"],
    ] {
        let t = mdevctl(&root, args);
        assert_usage_error(&t, "cannot be used multiple times");
    }
}

#[test]
fn bad_uuid_is_a_usage_error_naming_the_value() {
    let root = FakeRoot::new();
    for bad in [
        "foo",
        "1111111-1111-4111-8111-111111111111",
        "",
        "g1111111111141118111111111111111",
    ] {
        let t = mdevctl(&root, &["list", "-u", bad]);
        assert_usage_error(&t, &format!("invalid value '{bad}' for '--uuid <UUID>': "));
        let t = run(&root, "lsmdev", &["--uuid", bad]);
        assert_usage_error(&t, &format!("invalid value '{bad}' for '--uuid <UUID>': "));
    }
}

#[test]
fn missing_option_value_is_a_usage_error() {
    let root = FakeRoot::new();
    assert_usage_error(&mdevctl(&root, &["list", "-u"]), "'--uuid <UUID>'");
    assert_usage_error(&mdevctl(&root, &["types", "-p"]), "'--parent <PARENT>'");
}

#[test]
fn unsafe_parent_names_are_refused_before_any_path_is_built() {
    let root = FakeRoot::new();
    for bad in ["../escape", "a/b", ".", ".."] {
        for args in [
            &["list", "-p", bad][..],
            &["list", "-d", "-p", bad],
            &["types", "-p", bad],
        ] {
            assert_usage_error(&mdevctl(&root, args), "invalid parent name");
        }
    }
}

#[test]
fn non_utf8_option_value_is_a_usage_error_not_a_panic() {
    let root = FakeRoot::new();
    let bad = OsStr::from_bytes(b"mt\xfftty");
    for args in [
        [OsStr::new("list"), OsStr::new("-p"), bad],
        [OsStr::new("list"), OsStr::new("-u"), bad],
        [OsStr::new("types"), OsStr::new("-p"), bad],
    ] {
        let t = run_os(&root, "mdevctl", &args);
        assert_eq!(t.code, 2, "{}", t.stderr);
        assert!(t.stderr.contains("invalid UTF-8"), "{}", t.stderr);
        assert!(!t.stderr.contains("panicked"));
    }
}

#[test]
fn non_utf8_argv0_runs_as_mdevctl() {
    let root = standard_host();
    let t = run_with_arg0(
        &root,
        OsStr::from_bytes(b"/usr/sbin/\xfflsmdev"),
        &["list", "-d"],
    );
    t.assert_clean();
    assert_eq!(t.stdout, mdevctl(&root, &["list", "-d"]).stdout);
}

#[test]
fn argv0_without_lsmdev_suffix_runs_mdevctl_parser() {
    let root = standard_host();
    let t = run_with_arg0(&root, OsStr::new("lsmdev-old"), &["list"]);
    t.assert_clean();
    assert_eq!(t.stdout, mdevctl(&root, &["list"]).stdout);
}

#[test]
fn types_rejects_list_only_options() {
    let root = FakeRoot::new();
    for opt in ["-d", "-v", "-u"] {
        assert_usage_error(&mdevctl(&root, &["types", opt]), &format!("'{opt}'"));
    }
}

#[test]
fn stdout_json_has_no_trailing_newline_and_text_does() {
    let root = standard_host();
    let text = mdevctl(&root, &["types"]).stdout;
    let json = mdevctl(&root, &["types", "--dumpjson"]).stdout;
    assert!(text.ends_with('\n'));
    assert!(json.ends_with(']') && !json.ends_with('\n'));
}

#[test]
fn directory_overrides_win_over_env_root() {
    let root = FakeRoot::new();
    let elsewhere = standard_host();
    let t = mdevctl_env(
        &root,
        &["list", "-d"],
        &[(
            "MDEVCTL_CONFIG_DIR",
            elsewhere.join("etc/mdevctl.d").as_os_str(),
        )],
    );
    t.assert_clean();
    // The markers of `list -d` still come from the root's (empty) sysfs.
    let want = mdevctl(&elsewhere, &["list", "-d"]).stdout;
    assert!(want.contains(" (active)"));
    assert_eq!(t.stdout, want.replace(" (active)", ""));
    let t = mdevctl_env(
        &root,
        &["types"],
        &[("MDEVCTL_SYSFS_ROOT", elsewhere.join("sys").as_os_str())],
    );
    t.assert_clean();
    assert_eq!(t.stdout, mdevctl(&elsewhere, &["types"]).stdout);
    assert!(!t.stdout.is_empty());
}

#[test]
fn log_filter_error_silences_warnings() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "auto");
    root.define_raw("mtty", "not-a-uuid", "{}");
    let warned = mdevctl(&root, &["list", "-d"]);
    assert_eq!(warned.warnings(&root).len(), 1);
    for level in ["error", "off", "mdevkit=error"] {
        let t = mdevctl_env(
            &root,
            &["list", "-d"],
            &[("MDEVCTL_LOG", OsStr::new(level))],
        );
        t.assert_clean();
        assert_eq!(t.stdout, warned.stdout, "{level}");
    }
}

#[test]
fn help_and_version_work_with_invalid_timeout_settings() {
    let root = FakeRoot::new();
    for var in ["MDEVCTL_CALLOUT_TIMEOUT", "MDEVCTL_LOCK_TIMEOUT"] {
        let env = [(var, OsStr::new("abc"))];
        for args in [&["--help"][..], &["--version"], &["list", "-h"], &["help"]] {
            let t = mdevctl_env(&root, args, &env);
            t.assert_clean();
            assert!(!t.stdout.is_empty(), "{var} {args:?}");
        }
        // A usage error stays a usage error.
        assert_usage_error(&mdevctl_env(&root, &["list", "-x"], &env), "'-x'");
        // A command that runs reports the bad setting.
        let t = mdevctl_env(&root, &["list"], &env);
        assert_eq!(t.code, 1);
        assert!(
            t.stderr.starts_with("Error: ") && t.stderr.contains(var),
            "{}",
            t.stderr
        );
    }
}

#[test]
fn closed_stdout_is_an_error_exit_1() {
    let root = standard_host();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(bin())
        .args(["list", "-d"])
        .env("MDEVCTL_ENV_ROOT", root.path())
        .env_remove("MDEVCTL_LOG")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        "Error: Failed to write data: Broken pipe (os error 32)\n"
    );
}

#[test]
fn empty_env_root_means_paths_relative_to_working_directory() {
    let root = standard_host();
    let out = std::process::Command::new(bin())
        .args(["list", "-d"])
        .env("MDEVCTL_ENV_ROOT", "")
        .env_remove("MDEVCTL_LOG")
        .current_dir(root.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout, mdevctl(&root, &["list", "-d"]).stdout);
    assert!(stdout.contains(" (active)"));
}
