//! The external programs packaging needs, and the one error that names a missing one
//! together with the Debian package that provides it.

use std::path::Path;

use anyhow::Result;

/// A program run by the packaging tasks.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub program: &'static str,
    /// The Debian package that ships it, for the error message.
    pub debian_package: &'static str,
}

pub const GZIP: Tool = Tool {
    program: "gzip",
    debian_package: "gzip",
};
pub const DPKG_DEB: Tool = Tool {
    program: "dpkg-deb",
    debian_package: "dpkg",
};
pub const DPKG_SHLIBDEPS: Tool = Tool {
    program: "dpkg-shlibdeps",
    debian_package: "dpkg-dev",
};
pub const STRIP: Tool = Tool {
    program: "strip",
    debian_package: "binutils",
};
pub const RPMBUILD: Tool = Tool {
    program: "rpmbuild",
    debian_package: "rpm",
};

/// Whether `program` is an executable file in one of `PATH`'s directories.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        Path::new(&dir)
            .join(program)
            .metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Fails naming every tool of `tools` that is not on `PATH`, and where to get it.
pub fn require(tools: &[Tool]) -> Result<()> {
    let missing: Vec<String> = tools
        .iter()
        .filter(|t| !on_path(t.program))
        .map(|t| format!("{} (Debian package {})", t.program, t.debian_package))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("missing tools on PATH: {}", missing.join(", "))
    }
}
