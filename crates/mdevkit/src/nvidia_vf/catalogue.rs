//! `creatable_vgpu_types`: the types a free VF can be given now, as the driver lists them.

use super::names::VgpuTypeId;

/// One line of `creatable_vgpu_types`: a numeric id and the full name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VgpuType {
    pub id: VgpuTypeId,
    /// Full name with the `NVIDIA ` prefix, e.g. `NVIDIA L40S-4Q`.
    pub name: String,
}

/// Parses the listing in the driver's order.
///
/// The proprietary driver prints a header `ID    : vGPU Name` and `%-5d : %s` lines; other
/// builds and readers differ, so this accepts the header or not, blank lines, and `ID Name`
/// without a colon. Each line is split at its first colon (names may hold spaces and colons
/// are not in them); a line whose first field is not a decimal id is skipped.
pub fn parse_creatable(text: &str) -> Vec<VgpuType> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (id, name) = line
                .split_once(':')
                .or_else(|| line.split_once(char::is_whitespace))?;
            let id: VgpuTypeId = id.trim().parse().ok()?;
            let name = name.trim();
            (!name.is_empty()).then(|| VgpuType {
                id,
                name: name.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_driver_format_and_variants() {
        let text = "ID    : vGPU Name\n1150  : NVIDIA L40S-4Q\n2164  : NVIDIA L40S-3B\n\n\
                    812   : NVIDIA RTX Pro 6000 Blackwell DC-3Q\n999 NVIDIA X-1Q\njunk\n";
        let got: Vec<(u32, String)> = parse_creatable(text)
            .into_iter()
            .map(|t| (t.id.get(), t.name))
            .collect();
        let want = [
            (1150, "NVIDIA L40S-4Q"),
            (2164, "NVIDIA L40S-3B"),
            (812, "NVIDIA RTX Pro 6000 Blackwell DC-3Q"),
            (999, "NVIDIA X-1Q"),
        ]
        .map(|(i, n)| (i, n.to_owned()));
        assert_eq!(got, want);
        assert!(parse_creatable("ID    : vGPU Name\n").is_empty());
        assert!(parse_creatable("").is_empty());
    }
}
