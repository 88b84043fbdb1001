//! The `# check=` directive: which checks (lint rules) to skip and whether their warnings fail the build.
//!
//! Syntax as in BuildKit: `# check=skip=JSONArgsRecommended,StageNameCasing;error=true`, `# check=skip=all`.
//! The checks lade runs are named like BuildKit's: `MaintainerDeprecated`, `MultipleInstructionsDisallowed`,
//! `JSONArgsRecommended`, `LegacyKeyValueFormat`, `FromAsCasing`, `StageNameCasing`, `UndefinedArgInFrom`,
//! `NoEmptyContinuation`.

use std::collections::BTreeSet;

use super::diagnostic::SourceDiagnostic;

/// The checks configuration of a Dockerfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    /// `skip=all`.
    pub skip_all: bool,
    /// Rules listed in `skip=`.
    pub skip: BTreeSet<String>,
    /// `error=true`: a warning that is not skipped fails the build.
    pub error: bool,
}

impl CheckConfig {
    /// Parses the value of a `# check=` directive.
    pub fn parse(value: &str) -> Result<CheckConfig, String> {
        let mut config = CheckConfig::default();
        for part in value.split(';') {
            let Some((key, option)) = part.split_once('=') else {
                return Err(format!("invalid check option \"{part}\""));
            };
            let option = option.trim();
            match key.trim() {
                "skip" => {
                    for rule in option
                        .split(',')
                        .map(str::trim)
                        .filter(|rule| !rule.is_empty())
                    {
                        if rule == "all" {
                            config.skip_all = true;
                        } else {
                            config.skip.insert(rule.to_string());
                        }
                    }
                }
                "error" => {
                    config.error = match option {
                        "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
                        "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
                        _ => {
                            return Err(format!(
                                "failed to parse check option \"{part}\": not a boolean"
                            ))
                        }
                    }
                }
                "experimental" => {}
                other => return Err(format!("invalid check option \"{other}\"")),
            }
        }
        Ok(config)
    }

    /// Whether warnings of `rule` are reported.
    pub fn enabled(&self, rule: &str) -> bool {
        !self.skip_all && !self.skip.contains(rule)
    }

    /// Drops skipped warnings; with `error=true`, fails on the first remaining one.
    pub fn apply(
        &self,
        warnings: Vec<SourceDiagnostic>,
    ) -> Result<Vec<SourceDiagnostic>, SourceDiagnostic> {
        let kept: Vec<SourceDiagnostic> = warnings
            .into_iter()
            .filter(|warning| warning.rule.is_none_or(|rule| self.enabled(rule)))
            .collect();
        if self.error {
            if let Some(first) = kept.first() {
                let others = kept.len() - 1;
                return Err(first.clone().into_error().with_help(format!(
                    "`# check=error=true` turns check warnings into errors{}",
                    if others > 0 {
                        format!(" ({others} more warning(s) not shown)")
                    } else {
                        String::new()
                    }
                )));
            }
        }
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceFile;

    #[test]
    fn parses_options() {
        let config =
            CheckConfig::parse("skip=JSONArgsRecommended, StageNameCasing;error=true").unwrap();
        assert!(config.error && !config.skip_all);
        assert!(!config.enabled("StageNameCasing"));
        assert!(config.enabled("MaintainerDeprecated"));
        assert!(CheckConfig::parse("skip=all").unwrap().skip_all);
        assert!(CheckConfig::parse("nonsense").is_err());
        assert!(CheckConfig::parse("error=maybe").is_err());
        assert!(CheckConfig::parse("colour=red").is_err());
    }

    #[test]
    fn filters_and_escalates() {
        let file = SourceFile::new("Dockerfile", "MAINTAINER me\n");
        let warnings =
            || vec![file.warning("MaintainerDeprecated", "deprecated", 0..10, "use LABEL")];
        assert!(CheckConfig::parse("skip=MaintainerDeprecated")
            .unwrap()
            .apply(warnings())
            .unwrap()
            .is_empty());
        assert_eq!(CheckConfig::default().apply(warnings()).unwrap().len(), 1);
        let error = CheckConfig::parse("error=true")
            .unwrap()
            .apply(warnings())
            .unwrap_err();
        assert!(!error.is_warning());
    }
}
