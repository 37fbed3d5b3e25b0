//! Property tests of the command line, the binary's least trusted input: random argument
//! vectors built from the real options, names good and bad, and arbitrary text or bytes
//! never make the parser or the binary panic; a usage error exits 2 and a runtime error is
//! one `Error:` line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::Stdio;

use clap::error::ErrorKind;
use clap::Parser;
use mdevctl::cli::{Lsmdev, Mdevctl};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use crate::common::*;

/// One argument: an option, a value of the kind the options take (valid or not), or noise.
fn token() -> impl Strategy<Value = OsString> {
    const WORDS: &[&str] = &[
        "define",
        "undefine",
        "modify",
        "start",
        "stop",
        "list",
        "types",
        "help",
        "start-parent-mdevs",
        "-u",
        "--uuid",
        "-p",
        "--parent",
        "-t",
        "--type",
        "--jsonfile",
        "-a",
        "--auto",
        "-m",
        "--manual",
        "--addattr",
        "--delattr",
        "-i",
        "--index",
        "--value",
        "-l",
        "--live",
        "-d",
        "--defined",
        "-f",
        "--force",
        "-v",
        "--verbose",
        "--dumpjson",
        "-h",
        "--help",
        "-V",
        "--version",
        "-dv",
        "--",
        "-",
        "",
        U1,
        U2,
        "11111111-1111-4111-8111-1111111111AB",
        "mtty",
        "mtty-1",
        "mtty-2",
        "0000:00:02.0",
        "../x",
        "a/b",
        ".",
        "nvidia/vgpu_params",
        "a//b",
        "0",
        "1",
        "-1",
        "4294967296",
        "def.json",
        "bad.json",
        "/dev/null",
        "missing.json",
    ];
    prop_oneof![
        8 => proptest::sample::select(WORDS).prop_map(OsString::from),
        // An argument cannot hold a NUL byte (execve ends it there).
        1 => any::<String>().prop_map(|s| OsString::from(s.replace('\0', ""))),
        1 => proptest::collection::vec(1..=u8::MAX, 0..8).prop_map(OsString::from_vec),
    ]
}

/// Values of each kind an option takes, valid and not.
fn values(option: &str) -> &'static [&'static str] {
    match option {
        "-u" => &[U1, U2, "11111111-1111-4111-8111-1111111111AB", "x"],
        "-p" => &["mtty", "0000:00:02.0", "../x"],
        "-t" => &["mtty-1", "mtty-2", "nope"],
        "--jsonfile" => &["def.json", "bad.json", "/dev/null", "missing.json"],
        "--addattr" => &["a", "nvidia/vgpu_params", "../x"],
        "--value" => &["1", ""],
        "--index" => &["0", "1", "-1", "99"],
        _ => &[],
    }
}

/// A command followed by options it takes, with values of the right kind (valid or not),
/// and a little noise: most of these get past the parser and reach the command.
fn command_line() -> impl Strategy<Value = Vec<OsString>> {
    const COMMANDS: &[(&str, &[&str])] = &[
        (
            "define",
            &["-u", "-p", "-t", "--jsonfile", "--auto", "--force"],
        ),
        ("undefine", &["-u", "-p", "--force"]),
        (
            "modify",
            &[
                "-u",
                "-p",
                "-t",
                "--addattr",
                "--value",
                "--delattr",
                "--index",
                "--auto",
                "--manual",
                "--live",
                "--defined",
                "--jsonfile",
                "--force",
            ],
        ),
        ("start", &["-u", "-p", "-t", "--jsonfile", "--force"]),
        ("stop", &["-u", "--force"]),
        (
            "list",
            &["-u", "-p", "--defined", "--dumpjson", "--verbose"],
        ),
        ("types", &["-p", "--dumpjson"]),
        ("start-parent-mdevs", &[]),
    ];
    proptest::sample::select(COMMANDS).prop_flat_map(|(command, options)| {
        // Each option at most once (clap refuses repeats), each with a value of its kind.
        let chosen = proptest::sample::subsequence(options, 0..=options.len().min(5));
        let with_values = chosen.prop_flat_map(|opts| {
            opts.into_iter()
                .map(|o| {
                    let values = values(o);
                    let value = if values.is_empty() {
                        Just(None).boxed()
                    } else {
                        proptest::sample::select(values).prop_map(Some).boxed()
                    };
                    value.prop_map(move |v| std::iter::once(o).chain(v).collect::<Vec<_>>())
                })
                .collect::<Vec<_>>()
        });
        let positional = if command == "start-parent-mdevs" {
            proptest::sample::select(values("-p"))
                .prop_map(Some)
                .boxed()
        } else {
            Just(None).boxed()
        };
        let noise = proptest::option::weighted(0.1, token());
        (with_values, positional, noise).prop_map(move |(opts, positional, noise)| {
            let mut v = vec![OsString::from(command)];
            v.extend(
                opts.into_iter()
                    .flatten()
                    .chain(positional)
                    .map(OsString::from),
            );
            v.extend(noise);
            v
        })
    })
}

/// `argv0` followed by random tokens or a plausible command line.
fn argv(argv0: &'static str) -> impl Strategy<Value = Vec<OsString>> {
    let rest = prop_oneof![
        1 => proptest::collection::vec(token(), 0..8),
        3 => command_line(),
    ];
    rest.prop_map(move |mut v| {
        v.insert(0, OsString::from(argv0));
        v
    })
}

/// What every parse outcome must satisfy: help and version exit 0, anything else that
/// fails is a usage error with exit 2 and an `error:` line.
fn check_parse<T: std::fmt::Debug>(result: Result<T, clap::Error>) -> Result<(), TestCaseError> {
    let Err(e) = result else {
        return Ok(());
    };
    let rendered = e.render().to_string();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => prop_assert_eq!(e.exit_code(), 0),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            prop_assert_eq!(e.exit_code(), 2);
        }
        _ => {
            prop_assert_eq!(e.exit_code(), 2);
            prop_assert!(rendered.starts_with("error: "), "{rendered}");
        }
    }
    Ok(())
}

#[test]
fn random_argv_parses_or_is_a_usage_error() {
    let mut runner = TestRunner::new(proptest_config(1024));
    runner
        .run(&argv("mdevctl"), |args| {
            check_parse(Mdevctl::try_parse_from(args))
        })
        .unwrap();
    let mut runner = TestRunner::new(proptest_config(256));
    runner
        .run(&argv("lsmdev"), |args| {
            check_parse(Lsmdev::try_parse_from(args))
        })
        .unwrap();
}

/// A small host the commands can act on: one parent with two types, a definition, and
/// the JSON files the `--jsonfile` tokens name (relative to the working directory).
fn host() -> FakeRoot {
    let root = FakeRoot::new();
    root.parent("mtty")
        .mdev_type("mtty", "mtty-1", TypeSpec::new(2, "vfio-pci"))
        .mdev_type("mtty", "mtty-2", TypeSpec::new(0, "vfio-pci"))
        .define("mtty", U2, "mtty-1", "manual");
    root.write("def.json", config_json("mtty-1", "auto", &[("a", "1")]));
    root.write("bad.json", "{\"mdev_type\": 5");
    root
}

#[test]
fn random_argv_never_panics_the_binary_and_errors_are_one_line() {
    let root = host();
    let mut runner = TestRunner::new(proptest_config(64));
    runner
        .run(&argv("mdevctl"), |args| {
            let program = bin();
            let rest: Vec<&std::ffi::OsStr> = args[1..].iter().map(|a| a.as_os_str()).collect();
            let out = clean_command(&root, &program, &rest)
                .current_dir(root.path())
                .stdout(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let code = out.status.code();
            prop_assert!(
                matches!(code, Some(0..=2)),
                "{args:?}: {:?}\n{stderr}",
                out.status
            );
            // Warnings (`[<time> WARN ...`) may come first; the error is the rest.
            let error: Vec<&str> = stderr.lines().filter(|l| !l.starts_with('[')).collect();
            match code {
                Some(1) => {
                    prop_assert!(
                        error.first().is_some_and(|l| l.starts_with("Error: ")),
                        "{args:?}: {stderr}"
                    );
                    // `modify --index` errors add upstream's attribute block (DIVERGENCES §11).
                    if !error[0].starts_with("Error: Attribute index") {
                        prop_assert_eq!(error.len(), 1, "{:?}: {}", args, stderr);
                    }
                }
                // A usage error, or the help a bare `mdevctl` prints.
                Some(2) => prop_assert!(
                    stderr.starts_with("error: ") || stderr.contains("\nUsage: "),
                    "{args:?}: {stderr}"
                ),
                _ => {}
            }
            Ok(())
        })
        .unwrap();
}
