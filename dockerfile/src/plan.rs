//! The build plan: stages resolved against build options for a target.
//!
//! [`Stages::plan`] applies build options (build args, target, the platform ARGs): it resolves each stage's base
//! (image, `scratch` or a stage defined earlier) with the global ARGs, keeps its `--platform` as text for the
//! builder to parse, finds what each stage needs (`FROM <stage>`, `COPY --from`, `RUN --mount from=`), orders the
//! stages the target needs, reports dependency cycles and unknown stages, and lists build args nothing consumes.
//! [`BuildPlan::expand_stage`] then gives a build engine a stage's instructions with variables expanded.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use crate::diagnostic::{SourceDiagnostic, SourceFile};
use crate::instructions::{Command, CommandExpandError, Instruction};
use crate::predefined::{is_predefined_arg, PROXY_ARGS};
use crate::scope::StageScope;
use crate::shell::Lexer;
use crate::stages::{GlobalArg, Stage, Stages};

/// Options of one build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// `--build-arg NAME=VALUE`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (default: the last one).
    pub target: Option<String>,
    /// The platform ARGs of the build's target and build platforms (`TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`,
    /// `TARGETVARIANT`, `BUILDPLATFORM`, …, `BUILDVARIANT`), as the builder derives them from the platforms it
    /// parsed; none by default.
    pub platform_args: Vec<(String, String)>,
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseImage {
    /// `FROM scratch`.
    Scratch,
    /// An image reference (variables expanded).
    Image(String),
    /// Another stage, by index.
    Stage(usize),
}

/// A stage resolved for a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStage {
    /// The stage as written.
    pub stage: Stage,
    /// Its base.
    pub base: BaseImage,
    /// `--platform` of its FROM, expanded, as text: the builder parses it, and reports a malformed one at
    /// `stage.from_location`. `None` when absent or empty.
    pub platform: Option<String>,
    /// Stages it needs (base stage, `COPY --from`, `RUN --mount from=`), sorted.
    pub stage_dependencies: Vec<usize>,
    /// Images it copies or mounts from (`COPY --from=<image>`), sorted.
    pub image_dependencies: Vec<String>,
}

/// The stages of a build, resolved against build options.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    /// All stages, resolved.
    pub stages: Vec<PlannedStage>,
    /// The stage to build.
    pub target: usize,
    /// The stages the target needs, each after its dependencies; the target is last.
    pub build_order: Vec<usize>,
    /// Values of the global ARGs (and platform ARGs), as used in FROM lines.
    pub global_env: Vec<(String, String)>,
    /// Proxy build args, passed to RUN without declaration.
    pub proxy_env: Vec<(String, String)>,
    /// Build args that no ARG of the built stages (or the global scope) declares.
    pub unused_build_args: Vec<String>,
    /// Warnings (those of [`Stages`] plus plan warnings).
    pub warnings: Vec<SourceDiagnostic>,
    options: BuildOptions,
    global_args: Vec<GlobalArg>,
    escape: char,
    source: SourceFile,
}

impl Stages {
    /// Resolves the stages against `options`.
    pub fn plan(&self, options: &BuildOptions) -> Result<BuildPlan, SourceDiagnostic> {
        let lexer = Lexer::new(self.escape);
        let source = &self.source;
        let mut global_env: Vec<(String, String)> = options.platform_args.clone();
        for global in &self.global_args {
            let name = &global.declaration.name;
            let value = match (options.build_args.get(name), &global.declaration.default) {
                (Some(value), _) => Some(value.clone()),
                (None, Some(default)) => Some(
                    lexer
                        .process_word(default, global_env.as_slice())
                        .map_err(|error| {
                            source.error(
                                error.to_string(),
                                global.location.span.clone(),
                                "expected a valid default value",
                            )
                        })?,
                ),
                (None, None) => None,
            };
            global_env.retain(|(existing, _)| existing != name);
            if let Some(value) = value {
                global_env.push((name.clone(), value));
            }
        }

        let mut warnings = self.warnings.clone();
        warnings.extend(
            self.checks
                .apply(self.undeclared_from_arguments(&lexer, &global_env))?,
        );

        let mut planned = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            planned.push(self.plan_stage(stage, &lexer, &global_env, options)?);
        }

        let target = match &options.target {
            Some(name) => self.find_by_name(name).ok_or_else(|| {
                let mut known: Vec<&str> = self
                    .stages
                    .iter()
                    .filter_map(|stage| stage.name.as_deref())
                    .collect();
                known.sort_unstable();
                known.dedup();
                source
                    .error(
                        format!("target stage \"{name}\" could not be found"),
                        self.stages[self.stages.len() - 1]
                            .from_location
                            .span
                            .clone(),
                        "stages are named with FROM <image> AS <name>",
                    )
                    .with_help(format!("stages with names: {}", known.join(", ")))
            })?,
            None => self.stages.len() - 1,
        };
        let build_order = self.build_order(&planned, target)?;

        let mut declared: BTreeSet<&str> = self
            .global_args
            .iter()
            .map(|global| global.declaration.name.as_str())
            .collect();
        for &index in &build_order {
            for instruction in &self.stages[index].instructions {
                if let Command::Arg(arg) = &instruction.command {
                    declared.extend(
                        arg.declarations
                            .iter()
                            .map(|declaration| declaration.name.as_str()),
                    );
                }
            }
        }
        let unused_build_args: Vec<String> = options
            .build_args
            .keys()
            // SOURCE_DATE_EPOCH is read by the build itself (reproducible timestamps), as BuildKit reads it.
            .filter(|name| {
                !declared.contains(name.as_str())
                    && !is_predefined_arg(name)
                    && name.as_str() != "SOURCE_DATE_EPOCH"
            })
            .cloned()
            .collect();
        let proxy_env = PROXY_ARGS
            .iter()
            .filter_map(|name| {
                options
                    .build_args
                    .get(*name)
                    .map(|value| (name.to_string(), value.clone()))
            })
            .collect();

        Ok(BuildPlan {
            stages: planned,
            target,
            build_order,
            global_env,
            proxy_env,
            unused_build_args,
            warnings,
            options: options.clone(),
            global_args: self.global_args.clone(),
            escape: self.escape,
            source: self.source.clone(),
        })
    }

    /// `UndefinedArgInFrom`: variables in FROM lines that no global ARG declares.
    fn undeclared_from_arguments(
        &self,
        lexer: &Lexer,
        global_env: &[(String, String)],
    ) -> Vec<SourceDiagnostic> {
        let mut warnings = Vec::new();
        for stage in &self.stages {
            let words = std::iter::once(&stage.from.image).chain(stage.from.platform.as_ref());
            let mut undeclared = BTreeSet::new();
            for word in words {
                if let Ok(expansion) = lexer.expand(word, global_env) {
                    undeclared.extend(
                        expansion
                            .matched
                            .into_iter()
                            .chain(expansion.unmatched)
                            .filter(|name| {
                                !is_predefined_arg(name)
                                    && !self
                                        .global_args
                                        .iter()
                                        .any(|global| &global.declaration.name == name)
                            }),
                    );
                }
            }
            for name in undeclared {
                warnings.push(self.source.warning(
                    "UndefinedArgInFrom",
                    format!("FROM argument '{name}' is not declared"),
                    stage.from_location.span.clone(),
                    format!("declare it with ARG {name} before the first FROM"),
                ));
            }
        }
        warnings
    }

    fn plan_stage(
        &self,
        stage: &Stage,
        lexer: &Lexer,
        global_env: &[(String, String)],
        options: &BuildOptions,
    ) -> Result<PlannedStage, SourceDiagnostic> {
        let source = &self.source;
        let from_span = stage.from_location.span.clone();
        let image = lexer
            .process_word(&stage.from.image, global_env)
            .map_err(|error| {
                source.error(
                    error.to_string(),
                    from_span.clone(),
                    "expected a valid image reference",
                )
            })?;
        if image.is_empty() {
            return Err(source.error(
                format!("base name ({}) should not be blank", stage.from.image),
                from_span,
                "expected an image reference or stage name",
            ));
        }
        let platform = match &stage.from.platform {
            None => None,
            Some(text) => {
                let expanded = lexer.process_word(text, global_env).map_err(|error| {
                    source.error(error.to_string(), from_span.clone(), "expected a platform")
                })?;
                // An empty `--platform=` (as written or expanded) is the default platform, as in BuildKit.
                Some(expanded).filter(|expanded| !expanded.is_empty())
            }
        };
        let mut stage_dependencies = BTreeSet::new();
        let mut image_dependencies = BTreeSet::new();
        let base = if image == "scratch" {
            BaseImage::Scratch
        } else if let Some(index) = self.stages[..stage.index]
            .iter()
            .rposition(|earlier| earlier.name.as_deref() == Some(image.as_str()))
        {
            // Like BuildKit, a FROM line only refers to stages defined before it (the last of them, when a name is
            // used twice), and (as in v0.8) by the name as the stage has it, lowercase: `FROM Build` names an image,
            // an invalid reference.
            stage_dependencies.insert(index);
            BaseImage::Stage(index)
        } else {
            BaseImage::Image(image)
        };

        // Walk the stage with the ARG and ENV values known before the build, to expand --from references.
        let mut scope = StageScope::new(global_env, &self.global_args, options, &[]);
        for instruction in &stage.instructions {
            let references: Vec<&str> = match &instruction.command {
                Command::Copy(copy) => copy.from.as_deref().into_iter().collect(),
                Command::Run(run) => run.mount_specs.iter().map(String::as_str).collect(),
                _ => Vec::new(),
            };
            if !references.is_empty() {
                let expanded = instruction.command.expand(lexer, &scope).map_err(|error| {
                    expand_diagnostic(source, error, instruction.location.span.clone())
                })?;
                let from_values: Vec<String> = match &expanded {
                    Command::Copy(copy) => copy.from.clone().into_iter().collect(),
                    Command::Run(run) => run
                        .mounts
                        .iter()
                        .filter_map(|mount| mount.from.clone())
                        .collect(),
                    _ => Vec::new(),
                };
                for reference in from_values {
                    match self.resolve_reference(&reference, instruction.location.span.clone())? {
                        BaseImage::Stage(index) => {
                            stage_dependencies.insert(index);
                        }
                        BaseImage::Image(image) => {
                            image_dependencies.insert(image);
                        }
                        BaseImage::Scratch => {}
                    }
                }
            }
            scope.observe(&instruction.command, lexer);
        }
        Ok(PlannedStage {
            stage: stage.clone(),
            base,
            platform,
            stage_dependencies: stage_dependencies.into_iter().collect(),
            image_dependencies: image_dependencies.into_iter().collect(),
        })
    }

    /// A `--from` value: a stage name, a stage index, or an image.
    fn resolve_reference(
        &self,
        reference: &str,
        span: Range<usize>,
    ) -> Result<BaseImage, SourceDiagnostic> {
        if let Some(index) = self.find_by_name(reference) {
            return Ok(BaseImage::Stage(index));
        }
        if let Ok(index) = reference.parse::<i64>() {
            return usize::try_from(index)
                .ok()
                .filter(|index| *index < self.stages.len())
                .map(BaseImage::Stage)
                .ok_or_else(|| {
                    self.source.error(
                        format!("invalid stage index {index}"),
                        span,
                        format!("expected a stage index from 0 to {}", self.stages.len() - 1),
                    )
                });
        }
        if reference == "scratch" {
            return Ok(BaseImage::Scratch);
        }
        Ok(BaseImage::Image(reference.to_string()))
    }

    fn build_order(
        &self,
        planned: &[PlannedStage],
        target: usize,
    ) -> Result<Vec<usize>, SourceDiagnostic> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Unvisited,
            InProgress,
            Done,
        }
        let mut marks = vec![Mark::Unvisited; planned.len()];
        let mut order = Vec::new();
        // Iterative depth-first search: (stage, next dependency position).
        let mut stack = vec![(target, 0usize)];
        marks[target] = Mark::InProgress;
        while let Some((stage, position)) = stack.pop() {
            match planned[stage].stage_dependencies.get(position) {
                None => {
                    marks[stage] = Mark::Done;
                    order.push(stage);
                }
                Some(&dependency) => {
                    stack.push((stage, position + 1));
                    match marks[dependency] {
                        Mark::Done => {}
                        Mark::InProgress => {
                            let stage_ref = &self.stages[stage];
                            let span = self.dependency_span(stage_ref, dependency);
                            let name = self.stages[dependency]
                                .name
                                .clone()
                                .unwrap_or_else(|| dependency.to_string());
                            return Err(self.source.error(
                                format!("circular dependency detected on stage: {name}"),
                                span,
                                "this reference closes a cycle",
                            ));
                        }
                        Mark::Unvisited => {
                            marks[dependency] = Mark::InProgress;
                            stack.push((dependency, 0));
                        }
                    }
                }
            }
        }
        Ok(order)
    }

    /// Where `stage` refers to `dependency` (its FROM line or the first instruction naming it).
    fn dependency_span(&self, stage: &Stage, dependency: usize) -> Range<usize> {
        let names_dependency = |text: &str| {
            self.stages[dependency].name.as_deref() == Some(text.to_ascii_lowercase().as_str())
                || text == dependency.to_string()
        };
        stage
            .instructions
            .iter()
            .find(|instruction| match &instruction.command {
                Command::Copy(copy) => copy.from.as_deref().is_some_and(names_dependency),
                Command::Run(run) => run
                    .mounts
                    .iter()
                    .any(|mount| mount.from.as_deref().is_some_and(names_dependency)),
                _ => false,
            })
            .map(|instruction| instruction.location.span.clone())
            .unwrap_or_else(|| stage.from_location.span.clone())
    }
}

fn expand_diagnostic(
    source: &SourceFile,
    error: CommandExpandError,
    span: Range<usize>,
) -> SourceDiagnostic {
    source.error(
        error.to_string(),
        span,
        "expected a valid variable expansion",
    )
}

impl BuildPlan {
    /// The Dockerfile's name and text, for diagnostics about its instructions (e.g. a failed RUN).
    pub fn source(&self) -> &SourceFile {
        &self.source
    }

    /// The options the plan was made with.
    pub fn options(&self) -> &BuildOptions {
        &self.options
    }

    /// The stages to build, in order.
    pub fn stages_to_build(&self) -> impl Iterator<Item = &PlannedStage> {
        self.build_order.iter().map(|&index| &self.stages[index])
    }

    /// A stage's instructions with variables expanded as the build sees them, given the environment the
    /// stage starts with (its base image's ENV, or all of a base stage's variables). ARG and ENV update the environment as they
    /// come; ARG and ENV instructions are returned with their values expanded.
    pub fn expand_stage(
        &self,
        index: usize,
        base_env: &[(String, String)],
    ) -> Result<Vec<Instruction>, SourceDiagnostic> {
        let lexer = Lexer::new(self.escape);
        let mut scope =
            StageScope::new(&self.global_env, &self.global_args, &self.options, base_env);
        let mut expanded = Vec::new();
        for instruction in &self.stages[index].stage.instructions {
            let span = instruction.location.span.clone();
            let command = instruction
                .command
                .expand(&lexer, &scope)
                .map_err(|error| expand_diagnostic(&self.source, error, span.clone()))?;
            scope
                .apply(&instruction.command, &lexer)
                .map_err(|error| expand_diagnostic(&self.source, error, span))?;
            expanded.push(Instruction {
                command,
                location: instruction.location.clone(),
            });
        }
        Ok(expanded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::{CommandLine, Source};
    use crate::Dockerfile;

    fn stages(source: &str) -> Stages {
        Stages::from_dockerfile(&Dockerfile::parse(source, "Dockerfile").unwrap()).unwrap()
    }

    fn options(args: &[(&str, &str)], target: Option<&str>) -> BuildOptions {
        BuildOptions {
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            target: target.map(str::to_string),
            platform_args: [
                ("TARGETPLATFORM", "linux/arm64"),
                ("TARGETOS", "linux"),
                ("TARGETARCH", "arm64"),
                ("TARGETVARIANT", ""),
                ("BUILDPLATFORM", "linux/amd64"),
                ("BUILDOS", "linux"),
                ("BUILDARCH", "amd64"),
                ("BUILDVARIANT", ""),
            ]
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .to_vec(),
        }
    }

    const MULTI_STAGE: &str = "\
ARG VERSION=1.0
ARG BASE=alpine
FROM ${BASE}:${VERSION} AS base
ARG VERSION
RUN echo $VERSION

FROM golang:1.22 AS build
ARG TARGETARCH
COPY --from=base /etc/os-release /
RUN --mount=type=cache,target=/root/.cache,from=tools make

FROM busybox AS tools

FROM scratch AS final
COPY --from=build /out /
COPY --from=1 /x /y
COPY --from=nginx:latest /etc/nginx /etc/nginx
";

    #[test]
    fn from_names_a_stage_by_its_lowercase_name_only() {
        let stages = stages("FROM busybox AS Build\nFROM build\nFROM Build\n");
        let plan = stages.plan(&options(&[], None)).unwrap();
        assert_eq!(plan.stages[1].base, BaseImage::Stage(0));
        assert_eq!(plan.stages[2].base, BaseImage::Image("Build".into()));
    }

    #[test]
    fn target_selects_needed_stages_and_unused_args() {
        let stages = stages(MULTI_STAGE);
        let plan = stages
            .plan(&options(
                &[
                    ("UNUSED", "x"),
                    ("SOURCE_DATE_EPOCH", "0"),
                    ("HTTP_PROXY", "http://p"),
                    ("VERSION", "2"),
                ],
                Some("base"),
            ))
            .unwrap();
        assert_eq!(plan.build_order, [0]);
        assert_eq!(plan.unused_build_args, ["UNUSED"]);
        assert_eq!(
            plan.proxy_env,
            [("HTTP_PROXY".to_string(), "http://p".to_string())]
        );
        let error = stages.plan(&options(&[], Some("nope"))).unwrap_err();
        assert_eq!(error.message, "target stage \"nope\" could not be found");
    }

    /// The path of the stage's last instruction, a WORKDIR, as the build expands it.
    fn expanded_workdir(source: &str, build_args: &[(&str, &str)]) -> String {
        let plan = stages(source).plan(&options(build_args, None)).unwrap();
        let expanded = plan.expand_stage(0, &[]).unwrap();
        let Some(Command::Workdir(workdir)) = expanded.last().map(|i| &i.command) else {
            panic!("not WORKDIR");
        };
        workdir.path.clone()
    }

    #[test]
    fn arg_redeclaration_and_platform_args() {
        let source = "ARG VERSION=1.0\nFROM a\nARG VERSION\nARG TARGETARCH\nWORKDIR /$VERSION/$TARGETARCH/${BUILDARCH:-undeclared}\n";
        assert_eq!(expanded_workdir(source, &[]), "/1.0/arm64/undeclared");
    }

    #[test]
    fn a_later_arg_overrides_an_env_of_the_same_name() {
        // BuildKit keeps ARG values and ENV in one environment, so the last one written wins, either way round.
        let source = "FROM a\nENV E=env\nARG E=arg\nARG B=arg\nENV B=env\nWORKDIR /$E/$B\n";
        assert_eq!(expanded_workdir(source, &[]), "/arg/env");
    }

    #[test]
    fn expand_stage_applies_arg_and_env_in_order() {
        let source = "FROM a\nARG DIR=/src\nENV OUT=$DIR/out\nCOPY $DIR/x ${OUT}/\nRUN echo $OUT\nENV DIR=/env\nWORKDIR $DIR\n";
        let plan = stages(source).plan(&options(&[], None)).unwrap();
        let expanded = plan
            .expand_stage(0, &[("PATH".into(), "/bin".into())])
            .unwrap();
        let Command::Copy(copy) = &expanded[2].command else {
            panic!("not COPY");
        };
        assert_eq!(copy.sources, [Source::Path("/src/x".into())]);
        assert_eq!(copy.destination, "/src/out/");
        let Command::Run(run) = &expanded[3].command else {
            panic!("not RUN");
        };
        assert_eq!(run.command, CommandLine::Shell("echo $OUT".into()));
        let Command::Workdir(workdir) = &expanded[5].command else {
            panic!("not WORKDIR");
        };
        assert_eq!(workdir.path, "/env");
    }

    #[test]
    fn one_line_sees_variables_from_before_it() {
        let source = "FROM a\nENV A=0\nENV A=1 B=$A\nWORKDIR /$A$B\n";
        assert_eq!(expanded_workdir(source, &[]), "/10");
    }

    #[test]
    fn build_args_override_defaults_inside_stages() {
        let source = "FROM a\nARG MODE=debug\nWORKDIR /$MODE\n";
        assert_eq!(expanded_workdir(source, &[("MODE", "release")]), "/release");
    }

    #[test]
    fn cycles_and_bad_references_are_errors() {
        let cyclic = "FROM a AS one\nCOPY --from=two / /\nFROM b AS two\nCOPY --from=one / /\n";
        let error = stages(cyclic).plan(&options(&[], None)).unwrap_err();
        assert!(
            error
                .message
                .starts_with("circular dependency detected on stage"),
            "{}",
            error.message
        );
        let error = stages("FROM a AS one\nFROM one AS two\nFROM b\nCOPY --from=7 / /\n")
            .plan(&options(&[], None))
            .unwrap_err();
        assert_eq!(error.message, "invalid stage index 7");
        let self_copy = stages("FROM x\nCOPY --from=0 / /\n")
            .plan(&options(&[], None))
            .unwrap_err();
        assert!(self_copy.message.contains("circular"));
        let same_name = stages("FROM node AS node\n")
            .plan(&options(&[], None))
            .unwrap();
        assert_eq!(same_name.stages[0].base, BaseImage::Image("node".into()));
    }

    #[test]
    fn blank_base_name_is_an_error() {
        let error = stages("ARG IMAGE\nFROM $IMAGE\n")
            .plan(&options(&[], None))
            .unwrap_err();
        assert_eq!(error.message, "base name ($IMAGE) should not be blank");
    }

    #[test]
    fn stages_and_global_args() {
        let stages = stages(MULTI_STAGE);
        assert_eq!(stages.global_args.len(), 2);
        assert_eq!(stages.stages.len(), 4);
        assert_eq!(stages.find_by_name("BUILD"), Some(1));
        let plan = stages.plan(&options(&[("VERSION", "3.19")], None)).unwrap();
        assert_eq!(plan.stages[0].base, BaseImage::Image("alpine:3.19".into()));
        assert_eq!(plan.stages[3].base, BaseImage::Scratch);
        assert_eq!(plan.stages[1].stage_dependencies, [0, 2]);
        assert_eq!(plan.stages[3].stage_dependencies, [1]);
        assert_eq!(plan.stages[3].image_dependencies, ["nginx:latest"]);
        assert_eq!(plan.target, 3);
        assert_eq!(plan.build_order, [0, 2, 1, 3]);
    }

    #[test]
    fn check_directive_filters_and_escalates() {
        let source = "# check=skip=MaintainerDeprecated\nFROM a\nMAINTAINER me\nFROM b$NOPE\n";
        let plan = stages(source).plan(&options(&[], None)).unwrap();
        let rules: Vec<_> = plan.warnings.iter().map(|w| w.rule.unwrap()).collect();
        assert_eq!(rules, ["UndefinedArgInFrom"]);
        assert_eq!(
            plan.warnings[0].message,
            "FROM argument 'NOPE' is not declared"
        );
        let parse = |source: &str| {
            Stages::from_dockerfile(&Dockerfile::parse(source, "Dockerfile").unwrap())
        };
        let error = parse("# check=error=true\nFROM a\nMAINTAINER me\n").unwrap_err();
        assert!(!error.is_warning());
        assert_eq!(error.line, 3);
        let error = parse("# check=bogus\nFROM a\n").unwrap_err();
        assert_eq!((error.line, error.column), (1, 9));
        assert!(parse("# check=skip=all\nFROM a\nMAINTAINER me\n")
            .unwrap()
            .warnings
            .is_empty());
    }
}
