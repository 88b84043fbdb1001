//! Build stages: global ARGs, stages with names and indices.
//!
//! [`Stages`] types every instruction, splits them at each FROM, and collects the typing and stage warnings
//! (filtered by the `# check=` directive); [`Stages::plan`](crate::Stages::plan) resolves them for a build.

use super::checks::CheckConfig;
use super::diagnostic::{SourceDiagnostic, SourceFile};
use super::instructions::{
    ArgDeclaration, Command, From, Instruction, InstructionWarning, Location,
};
use super::Dockerfile;

/// A stage: `FROM …` and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position among the stages (0-based), usable as `COPY --from=<index>`.
    pub index: usize,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// The FROM instruction as written.
    pub from: From,
    /// Where the FROM instruction is.
    pub from_location: Location,
    /// The stage's instructions after FROM.
    pub instructions: Vec<Instruction>,
}

/// An ARG before the first FROM; usable in FROM lines and re-declarable inside stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalArg {
    /// Name and default as written.
    pub declaration: ArgDeclaration,
    /// Where it is declared.
    pub location: Location,
}

/// A Dockerfile split into global ARGs and stages.
#[derive(Debug, Clone)]
pub struct Stages {
    /// The escape character of the file.
    pub escape: char,
    /// ARGs before the first FROM.
    pub global_args: Vec<GlobalArg>,
    /// The stages in file order.
    pub stages: Vec<Stage>,
    /// Warnings from typing and stage checks (deprecated MAINTAINER, several CMD in a stage, …), without
    /// those the `# check=` directive skips.
    pub warnings: Vec<SourceDiagnostic>,
    /// The `# check=` configuration.
    pub checks: CheckConfig,
    pub(crate) source: SourceFile,
}

fn warning_to_diagnostic(source: &SourceFile, warning: InstructionWarning) -> SourceDiagnostic {
    source.warning(warning.rule, warning.message, warning.span, warning.label)
}

impl Stages {
    /// Types every instruction of `dockerfile` and splits them into stages.
    pub fn from_dockerfile(dockerfile: &Dockerfile) -> Result<Stages, SourceDiagnostic> {
        let source = dockerfile.source.clone();
        let checks = match &dockerfile.directives.check {
            None => CheckConfig::default(),
            Some(value) => CheckConfig::parse(value).map_err(|message| {
                source.error(
                    message,
                    dockerfile.directives.check_span.clone().unwrap_or(0..0),
                    "expected skip=<rules|all> and/or error=<true|false>, separated by ;",
                )
            })?,
        };
        let mut typing_warnings = Vec::new();
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for node in &dockerfile.nodes {
            let instruction = super::instructions::parse_instruction(node, &mut typing_warnings)
                .map_err(|error| {
                    let diagnostic = source.error(
                        error.message,
                        error.span,
                        format!("expected {}", error.expected),
                    );
                    match error.help {
                        Some(help) => diagnostic.with_help(help),
                        None => diagnostic,
                    }
                })?;
            match instruction.command {
                Command::From(from) => {
                    stages.push(Stage {
                        index: stages.len(),
                        name: from.stage_name.clone(),
                        from,
                        from_location: instruction.location,
                        instructions: Vec::new(),
                    });
                }
                command => {
                    match stages.last_mut() {
                        Some(stage) => stage.instructions.push(Instruction {
                            command,
                            location: instruction.location,
                        }),
                        None => match command {
                            Command::Arg(arg) => global_args.extend(
                                arg.declarations.into_iter().map(|declaration| GlobalArg {
                                    declaration,
                                    location: instruction.location.clone(),
                                }),
                            ),
                            _ => {
                                return Err(source.error(
                                    "no build stage in current context",
                                    node.keyword_span.clone(),
                                    "expected FROM before this (only ARG may come first)",
                                ))
                            }
                        },
                    }
                }
            }
        }
        if stages.is_empty() {
            let end = source.text().len();
            return Err(source.error(
                "dockerfile contains no stages to build",
                end..end,
                "expected a FROM instruction",
            ));
        }
        let mut warnings: Vec<SourceDiagnostic> = dockerfile.warnings.clone();
        warnings.extend(
            typing_warnings
                .into_iter()
                .map(|warning| warning_to_diagnostic(&source, warning)),
        );
        for stage in &stages {
            warnings.extend(repeated_instruction_warnings(&source, stage));
        }
        let warnings = checks.apply(warnings)?;
        Ok(Stages {
            escape: dockerfile.escape(),
            global_args,
            stages,
            warnings,
            checks,
            source,
        })
    }

    /// The stage called `name` (case-insensitive). BuildKit v0.8 accepts a name given to several stages, and the
    /// last of them is the one `--from` and `--target` mean.
    pub fn find_by_name(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .rposition(|stage| stage.name.as_deref() == Some(lower.as_str()))
    }
}

/// Warns about CMD, ENTRYPOINT and HEALTHCHECK given more than once in a stage.
fn repeated_instruction_warnings(source: &SourceFile, stage: &Stage) -> Vec<SourceDiagnostic> {
    let mut warnings = Vec::new();
    for name in ["CMD", "ENTRYPOINT", "HEALTHCHECK"] {
        let occurrences: Vec<&Instruction> = stage
            .instructions
            .iter()
            .filter(|instruction| instruction.command.name() == name)
            .collect();
        if let Some((_, earlier)) = occurrences.split_last() {
            for instruction in earlier {
                warnings.push(source.warning(
                    "MultipleInstructionsDisallowed",
                    format!(
                        "Multiple {name} instructions should not be used in the same stage because only the last one will be used"
                    ),
                    instruction.location.span.clone(),
                    format!("overridden by a later {name}"),
                ));
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages(source: &str) -> Stages {
        Stages::from_dockerfile(&Dockerfile::parse(source, "Dockerfile").unwrap()).unwrap()
    }

    #[test]
    fn structural_errors() {
        let parse = |source: &str| {
            Stages::from_dockerfile(&Dockerfile::parse(source, "Dockerfile").unwrap())
        };
        assert_eq!(
            parse("RUN x\nFROM a").unwrap_err().message,
            "no build stage in current context"
        );
        assert_eq!(
            parse("ARG A\n").unwrap_err().message,
            "dockerfile contains no stages to build"
        );
        let error = parse("FROM a\nCOPY --bogus=1 a b\n").unwrap_err();
        assert_eq!((error.line, error.column), (2, 6));
    }

    #[test]
    fn repeated_cmd_warns() {
        let stages = stages("FROM a\nCMD a\nCMD b\nFROM b\nCMD c\n");
        let messages: Vec<_> = stages
            .warnings
            .iter()
            .map(|w| (w.line, w.message.clone()))
            .collect();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].0, 2);
        assert!(messages[0].1.starts_with("Multiple CMD instructions"));
    }
}
